//! Property tests: whatever the inputs, sealed payloads round-trip, and any change
//! to a payload, its room, its member or a file's chunk stream is detected.

use proptest::prelude::*;
use streamchat_crypto::{
    FileCipher, FileError, FileKey, FileManifest, FileSealer, IdentityKey, Iv, MemberId,
    NoncePrefix, OpenError, RoomKeys, RoomSecret, SealedFile, open, open_file, open_from,
    seal_file, seal_with_iv,
};

fn member() -> impl Strategy<Value = MemberId> {
    // Any UTF-8 string of 1 to 64 bytes: cut arbitrary strings down at a char boundary.
    any::<String>().prop_filter_map("empty", |s| {
        let mut end = s.len().min(64);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        MemberId::new(&s[..end]).ok()
    })
}

fn room() -> impl Strategy<Value = RoomKeys> {
    any::<[u8; 32]>().prop_map(|s| RoomSecret::from_bytes(s).room_keys())
}

fn identity() -> impl Strategy<Value = IdentityKey> {
    any::<[u8; 32]>().prop_map(|seed| IdentityKey::from_seed(&seed))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

fn seal(
    room: &RoomKeys,
    member: &MemberId,
    identity: &IdentityKey,
    body: &[u8],
    iv: [u8; 12],
) -> Vec<u8> {
    seal_with_iv(room, member, identity, body, &Iv::from_bytes(iv)).expect("small bodies seal")
}

fn cipher(key: [u8; 32], prefix: [u8; 7]) -> FileCipher {
    FileCipher::new(&FileKey::from_bytes(key), NoncePrefix::from_bytes(prefix))
}

/// A file of 0..200 bytes in chunks of 1..40 bytes, sealed.
fn sealed_file() -> impl Strategy<Value = (FileCipher, Vec<u8>, SealedFile)> {
    (
        any::<[u8; 32]>(),
        any::<[u8; 7]>(),
        proptest::collection::vec(any::<u8>(), 0..200),
        1..40u32,
    )
        .prop_map(|(key, prefix, data, chunk_size)| {
            let cipher = cipher(key, prefix);
            let sealed = seal_file(cipher.clone(), chunk_size, &data).expect("small files seal");
            (cipher, data, sealed)
        })
}

fn numbered(chunks: &[Vec<u8>], order: &[usize]) -> Vec<(u32, Vec<u8>)> {
    order
        .iter()
        .map(|&i| (u32::try_from(i).expect("few chunks"), chunks[i].clone()))
        .collect()
}

proptest! {
    #[test]
    fn seal_open_round_trip(
        room in room(), member in member(), identity in identity(), body in body(),
        iv in any::<[u8; 12]>(),
    ) {
        let sealed = seal(&room, &member, &identity, &body, iv);
        let verified = open_from(&room, &member, &identity.public_key(), &sealed).unwrap();
        prop_assert_eq!(verified.body(), &body[..]);
    }

    #[test]
    fn any_flipped_bit_is_detected(
        room in room(), member in member(), identity in identity(), body in body(),
        iv in any::<[u8; 12]>(), bit in any::<prop::sample::Index>(),
    ) {
        let mut sealed = seal(&room, &member, &identity, &body, iv);
        let bit = bit.index(sealed.len() * 8);
        sealed[bit / 8] ^= 1 << (bit % 8);
        let result = open_from(&room, &member, &identity.public_key(), &sealed);
        if bit < 8 {
            prop_assert!(matches!(result, Err(OpenError::UnsupportedVersion(_))));
        } else {
            prop_assert_eq!(result, Err(OpenError::Tampered));
        }
    }

    #[test]
    fn any_truncation_or_extension_is_detected(
        room in room(), member in member(), identity in identity(), body in body(),
        iv in any::<[u8; 12]>(), cut in any::<prop::sample::Index>(), extra in 1..20usize,
    ) {
        let sealed = seal(&room, &member, &identity, &body, iv);
        let key = identity.public_key();
        let cut = cut.index(sealed.len());
        prop_assert!(open_from(&room, &member, &key, &sealed[..cut]).is_err());
        let mut longer = sealed.clone();
        longer.extend(std::iter::repeat_n(0u8, extra));
        prop_assert!(open_from(&room, &member, &key, &longer).is_err());
    }

    #[test]
    fn wrong_room_or_member_is_detected(
        room in room(), other_room in room(), member in member(), other_member in member(),
        identity in identity(), body in body(), iv in any::<[u8; 12]>(),
    ) {
        let sealed = seal(&room, &member, &identity, &body, iv);
        if other_room != room {
            prop_assert_eq!(open(&other_room, &member, &sealed), Err(OpenError::Tampered));
        }
        if other_member != member {
            prop_assert_eq!(open(&room, &other_member, &sealed), Err(OpenError::Tampered));
        }
    }

    #[test]
    fn another_signer_is_detected(
        room in room(), member in member(), identity in identity(), impostor in identity(),
        body in body(), iv in any::<[u8; 12]>(),
    ) {
        prop_assume!(identity.public_key() != impostor.public_key());
        let sealed = seal(&room, &member, &impostor, &body, iv);
        prop_assert_eq!(
            open_from(&room, &member, &identity.public_key(), &sealed),
            Err(OpenError::BadSignature)
        );
    }

    #[test]
    fn files_round_trip_whatever_the_split(
        (cipher, data, sealed) in sealed_file(), piece in 1..50usize,
    ) {
        let count = sealed.chunks.len();
        prop_assert_eq!(
            u32::try_from(count).unwrap(),
            FileManifest::chunk_count(data.len() as u64, sealed.manifest.chunk_size()).unwrap()
        );
        let order: Vec<usize> = (0..count).collect();
        let opened = open_file(cipher.clone(), sealed.manifest, numbered(&sealed.chunks, &order));
        prop_assert_eq!(opened.unwrap(), data.clone());

        // Feeding the sealer in pieces of any size gives the same chunks.
        let mut sealer = FileSealer::new(cipher, sealed.manifest.chunk_size()).unwrap();
        let mut chunks = Vec::new();
        for p in data.chunks(piece) {
            chunks.extend(sealer.push(p).unwrap().into_iter().map(|c| c.data));
        }
        let (last, manifest) = sealer.finish().unwrap();
        chunks.push(last.data);
        prop_assert_eq!(chunks, sealed.chunks);
        prop_assert_eq!(manifest, sealed.manifest);
    }

    #[test]
    fn reordered_chunks_are_detected(
        (cipher, _data, sealed) in sealed_file(), a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(), relabel in any::<bool>(),
    ) {
        let count = sealed.chunks.len();
        let (a, b) = (a.index(count), b.index(count));
        prop_assume!(a != b);
        let mut order: Vec<usize> = (0..count).collect();
        order.swap(a, b);
        let mut chunks = numbered(&sealed.chunks, &order);
        if relabel {
            // The relay also rewrites seq so the order looks right: chunks then fail to open.
            for (i, chunk) in chunks.iter_mut().enumerate() {
                chunk.0 = u32::try_from(i).unwrap();
            }
        }
        let result = open_file(cipher, sealed.manifest, chunks);
        prop_assert!(
            matches!(result, Err(FileError::OutOfOrder { .. } | FileError::Tampered { .. })),
            "{:?}", result
        );
    }

    #[test]
    fn dropped_chunks_are_detected(
        (cipher, _data, sealed) in sealed_file(), drop in any::<prop::sample::Index>(),
        relabel in any::<bool>(),
    ) {
        let count = sealed.chunks.len();
        let drop = drop.index(count);
        let order: Vec<usize> = (0..count).filter(|&i| i != drop).collect();
        let mut chunks = numbered(&sealed.chunks, &order);
        if relabel {
            for (i, chunk) in chunks.iter_mut().enumerate() {
                chunk.0 = u32::try_from(i).unwrap();
            }
        }
        prop_assert!(open_file(cipher, sealed.manifest, chunks).is_err());
    }

    #[test]
    fn truncated_streams_are_detected(
        (cipher, _data, sealed) in sealed_file(), keep in any::<prop::sample::Index>(),
    ) {
        let count = sealed.chunks.len();
        let keep = keep.index(count); // 0..count-1 chunks: always short of the end.
        let order: Vec<usize> = (0..keep).collect();
        let result = open_file(cipher, sealed.manifest, numbered(&sealed.chunks, &order));
        prop_assert_eq!(
            result,
            Err(FileError::Incomplete {
                received: u32::try_from(keep).unwrap(),
                expected: u32::try_from(count).unwrap(),
            })
        );
    }

    #[test]
    fn any_flipped_bit_in_a_chunk_is_detected(
        (cipher, _data, mut sealed) in sealed_file(), chunk in any::<prop::sample::Index>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let count = sealed.chunks.len();
        let chunk = chunk.index(count);
        let bit = bit.index(sealed.chunks[chunk].len() * 8);
        sealed.chunks[chunk][bit / 8] ^= 1 << (bit % 8);
        let order: Vec<usize> = (0..count).collect();
        let result = open_file(cipher, sealed.manifest, numbered(&sealed.chunks, &order));
        prop_assert_eq!(result, Err(FileError::Tampered { index: u32::try_from(chunk).unwrap() }));
    }
}
