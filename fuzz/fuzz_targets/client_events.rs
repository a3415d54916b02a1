//! What the Rust client does with the server's frames, the server being untrusted
//! (docs/crypto.md §12): `FrameReader` (crates/client/src/client.rs) decodes each
//! WebSocket frame (Engine.IO, Socket.IO with binary attachments, the typed events);
//! acknowledgements are decoded as each typed ack (`decode_ack` into `JoinAck`,
//! `ResumeAck`, `MsgAck`, `OkAck`); events go to a session's driver
//! (`session::fuzzing::Harness`, the session's own `Driver::handle`) already in a room:
//! the roster (each profile opened and verified for its member id), messages opened and
//! verified against their sender's profile key, bodies parsed, replays dropped, files
//! announced, their chunks reordered, decrypted and checked, presence, notices.
//!
//! Input: frames until the input ends, each a kind byte (bit 0: text or binary), a u16 LE
//! length and its bytes (a text frame that is not UTF-8 is skipped: tungstenite refuses
//! it). The session is `Me` in the room of the vectors' first secret; the seeds bring
//! members whose profiles verify (the vectors' identities), their messages, typing, a
//! file with its chunks, and acks.
//!
//! Nothing may panic. Besides:
//! - a `msg` or `chunk` event carries one of the attachments that followed its packet's
//!   header, byte for byte;
//! - whoever a message, typing or file is attributed to joined with a verified profile,
//!   is still there, with the same key, and is not this session;
//! - names are cleaned (no control or bidi characters, trimmed, at most 64 characters);
//!   file names hold no path separator or control character; MIME types are plain;
//! - a file handed over whole is exactly its announced size and SHA-256;
//! - text made safe for a terminal (`display::safe_text`) holds no control character but
//!   newline and tab.

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use streamchat_client::session::fuzzing::Harness;
use streamchat_client::{
    FrameReader, Incoming, ServerEvent, SessionEvent, decode_ack, display, packet,
};
use streamchat_crypto::{PublicKey, RoomSecret, encoding};
use streamchat_protocol::{JoinAck, Limits, MemberId, MsgAck, OkAck, ResumeAck};

/// The vectors' first room secret (bytes 0 to 31).
const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
/// This session's member id.
const ME: &str = "selfSocketId00000001";

fn limits() -> Limits {
    // The server's defaults (crates/server/src/config.rs).
    Limits {
        max_message_bytes: 64 * 1024,
        max_chunk_bytes: 1024 * 1024,
        max_file_chunks: 256,
        max_file_bytes: 256 * 1024 * 1024,
        max_members_per_room: 1000,
    }
}

fn harness() -> Harness {
    let secret: RoomSecret = SECRET.parse().expect("vector secret");
    Harness::new(
        &secret,
        &[0x5a; 32],
        "Me",
        (MemberId::new(ME).expect("member id"), 1, limits()),
        ("epoch-1".to_owned(), 0),
    )
}

fn clean(text: &str) -> bool {
    text.chars().all(|c| {
        !c.is_control()
            && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
    })
}

fn check_name(name: &str) {
    assert!(clean(name), "{name:?}");
    assert!(
        !name.is_empty() && name.trim() == name && name.chars().count() <= 64,
        "{name:?}"
    );
}

fn check_file(name: &str, mime: &str) {
    assert!(clean(name) && !name.contains(['/', '\\']), "{name:?}");
    assert!(!name.is_empty() && name != "." && name != ".." && name.chars().count() <= 255);
    assert!(
        mime == "application/octet-stream"
            || (mime.len() <= 127
                && mime == mime.to_ascii_lowercase()
                && mime.split_once('/').is_some()),
        "{mime:?}"
    );
}

fuzz_target!(|input: &[u8]| {
    let mut session = harness();
    let mut reader = FrameReader::default();
    // Members present as the session announced them: id → key.
    let mut present: HashMap<MemberId, PublicKey> = HashMap::new();
    // The attachments of the packet being read.
    let mut attachments: Vec<Vec<u8>> = Vec::new();

    let mut rest = input;
    while let Some((&kind, tail)) = rest.split_first() {
        let Some((len, tail)) = tail.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (frame, tail) = tail.split_at(len);
        rest = tail;

        let incoming = if kind & 1 == 0 {
            let Ok(text) = std::str::from_utf8(frame) else {
                continue;
            };
            // A binary packet's header starts its attachments (a text frame between them
            // that is not one does not: the reader goes on collecting).
            if text
                .strip_prefix('4')
                .and_then(|t| packet::decode(t).ok())
                .is_some_and(|p| p.attachments > 0)
            {
                attachments.clear();
            }
            reader.text(text)
        } else {
            attachments.push(frame.to_vec());
            reader.binary(Bytes::copy_from_slice(frame))
        };
        let event = match incoming {
            Incoming::Event(event) => event,
            Incoming::Ack(_, first) => {
                reached!("ack");
                let _ = decode_ack::<JoinAck>(first.clone());
                let _ = decode_ack::<ResumeAck>(first.clone());
                let _ = decode_ack::<MsgAck>(first.clone());
                let _ = decode_ack::<OkAck>(first);
                continue;
            }
            Incoming::Nothing | Incoming::Ping | Incoming::Close => continue,
        };
        match &event {
            ServerEvent::Msg(m) => assert!(attachments.iter().any(|a| a[..] == m.data.0[..])),
            ServerEvent::Chunk(c) => assert!(attachments.iter().any(|a| a[..] == c.data.0[..])),
            _ => {}
        }
        reached!(
            "event {}",
            match &event {
                ServerEvent::Presence(_) => "presence",
                ServerEvent::Msg(_) => "msg",
                ServerEvent::Chunk(_) => "chunk",
                ServerEvent::Notice(_) => "notice",
                ServerEvent::Other(..) => "other",
                ServerEvent::Disconnected => "disconnected",
            }
        );
        for out in session.handle(event) {
            check(&out, &mut present);
        }
    }
});

fn check(event: &SessionEvent, present: &mut HashMap<MemberId, PublicKey>) {
    reached!(
        "session {}",
        format!("{event:?}")
            .split([' ', '{', '('])
            .next()
            .unwrap_or("")
    );
    let sender = |from: &streamchat_client::Member, present: &HashMap<MemberId, PublicKey>| {
        assert!(!from.is_self);
        assert_eq!(
            present.get(&from.member),
            Some(&from.key),
            "from a verified member who is here"
        );
    };
    match event {
        SessionEvent::MemberJoined { member, .. } => {
            check_name(&member.name);
            assert!(!member.is_self);
            assert_eq!(member.fingerprint, member.key.fingerprint().to_string());
            present.insert(member.member.clone(), member.key);
        }
        SessionEvent::MemberLeft { member, .. } => {
            assert!(
                present.remove(&member.member).is_some(),
                "only a member present leaves"
            );
        }
        SessionEvent::MemberAway { member } | SessionEvent::MemberBack { member } => {
            sender(member, present);
        }
        SessionEvent::Message { from, text, .. } => {
            sender(from, present);
            let safe = display::safe_text(text);
            assert!(
                safe.chars()
                    .all(|c| c == '\n' || c == '\t' || !c.is_control())
            );
        }
        SessionEvent::Typing { from } => sender(from, present),
        // Only a text's author changes it: the reference names the key that signed the change.
        SessionEvent::Edited { from, message, .. } | SessionEvent::Deleted { from, message } => {
            sender(from, present);
            assert_eq!(from.key, message.key, "an edit or deletion by the text's author");
        }
        SessionEvent::Reacted {
            from, reactions, ..
        } => {
            sender(from, present);
            assert!(reactions.iter().all(|r| r.count == r.names.len() && r.count > 0));
        }
        SessionEvent::FileOffered { from, file, .. } => {
            sender(from, present);
            check_file(&file.name, &file.mime);
        }
        SessionEvent::FileFailed { file, .. } => check_file(&file.name, &file.mime),
        SessionEvent::FileReceived {
            from, file, data, ..
        } => {
            sender(from, present);
            check_file(&file.name, &file.mime);
            assert_eq!(data.len() as u64, file.size);
            assert_eq!(
                encoding::encode(&Sha256::digest(data)),
                file.sha256,
                "the file announced"
            );
        }
        SessionEvent::Notice { .. } | SessionEvent::Warning { .. } => {}
        other => panic!("a server event led to {other:?}"),
    }
}
