//! The server's decoding of every client payload, on the path the server really takes.
//!
//! Input: a WebSocket text frame, then optionally binary frames, separated by 0xFF bytes
//! (0xFF never occurs in UTF-8, so the text frame cannot contain one; binary frames here
//! cannot either, which costs nothing: the server never looks inside attachments).
//!
//! 1. The text frame goes through engine.io's packet parser (`engineioxide_core::Packet`,
//!    protocol v4), as `transport/ws.rs` does for every text frame.
//! 2. An engine.io message goes through socketioxide's common parser (`decode_str`, then
//!    `decode_bin` for each binary frame, with the server's `ParseConfig`), as the
//!    server's client loop does. The text frame is also given to the parser directly,
//!    so mutations need not keep the leading engine.io `4`.
//! 3. A complete event has its name read (`read_event`) and its payload extracted as
//!    each of `JoinRequest` (with `since`), `ResumeRequest`, `LeaveRequest`, `MsgRequest`
//!    (with `to` and the client id `id`), `ChunkRequest` exactly as socketioxide's
//!    `TryData<T>` extractor does (`decode_value(v, true)`). A CONNECT packet's auth
//!    payload is extracted as the server's connect middleware does
//!    (`decode_default(auth)` into the shape of `RecoveryAuth`, then its `offset` read as
//!    a number).
//! 4. Independently, the raw bytes are handed to serde_json as each request type, and
//!    the text as each id newtype (`RoomId`, `FileId`, `MemberId::new`).
//!
//! Nothing may panic, overflow the stack or allocate without bound; an accepted request
//! must carry valid ids (re-validated here), a `chunk`'s `seq` fits u32 by type, and
//! a `join` or `resume` accepted serializes back to JSON that reads as the same request.

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use bytes::Bytes;
use engineioxide_core::{Packet as EioPacket, ProtocolVersion};
use libfuzzer_sys::fuzz_target;
use socketioxide_core::Str;
use socketioxide_core::packet::{Packet, PacketData};
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_parser_common::CommonParser;
use streamchat_protocol::{
    ChunkRequest, FileId, JoinRequest, LeaveRequest, MemberId, MsgRequest, ResumeRequest, RoomId,
};

/// The shape of the server's `RecoveryAuth` (crates/server/src/socket.rs, private there):
/// what socket.io-client sends in its CONNECT packet to recover a connection.
#[derive(Debug, serde::Deserialize)]
struct RecoveryAuth {
    pid: String,
    #[serde(default)]
    offset: Option<String>,
}

/// The server's parser limits (crates/server/src/lib.rs `app`): the largest message or
/// chunk (1 MiB by default) plus 64 KiB of header; the other limits are socketioxide's
/// defaults.
fn server_parse_config() -> ParseConfig {
    ParseConfig {
        max_incoming_binary_buf_size: 1024 * 1024 + 64 * 1024,
        ..ParseConfig::default()
    }
}

fuzz_target!(|input: &[u8]| {
    let mut frames = input.split(|&b| b == 0xFF);
    let text = frames.next().unwrap_or_default();
    let binaries: Vec<&[u8]> = frames.collect();

    raw_json(input);

    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    ids(text);

    // engine.io first, as for a WebSocket text frame.
    if let Ok(EioPacket::Message(msg)) = EioPacket::parse(ProtocolVersion::V4, text.to_owned()) {
        socket_io(msg, &binaries);
    }
    // And straight to the Socket.IO parser, so the fuzzer need not keep the '4'.
    socket_io(Str::from(text.to_owned()), &binaries);
});

fn socket_io(msg: Str, binaries: &[&[u8]]) {
    let config = server_parse_config();
    let state = ParserState::default();
    let mut result = CommonParser.decode_str(&config, &state, msg);
    for bin in binaries {
        match result {
            Err(ParseError::NeedsMoreBinaryData) => {
                result = CommonParser.decode_bin(&config, &state, Bytes::copy_from_slice(bin));
            }
            _ => break,
        }
    }
    let Ok(Packet { inner, .. }) = result else {
        return;
    };
    let value = match inner {
        PacketData::Event(v, _) | PacketData::BinaryEvent(v, _) => v,
        PacketData::Connect(auth) => {
            // The connect middleware's `TryData<RecoveryAuth>`.
            let auth: Result<RecoveryAuth, _> = CommonParser.decode_default(auth.as_ref());
            if let Ok(auth) = auth {
                reached!("connect auth");
                let _ = (auth.pid.len(), auth.offset.and_then(|o| o.parse::<u64>().ok()));
            }
            return;
        }
        // Acks are not client requests: the server ignores acks it did not ask for.
        _ => return,
    };
    if CommonParser.read_event(&value).is_err() {
        return;
    }
    extract::<JoinRequest>(&value, |r| {
        reached!("join (since: {})", r.since.is_some());
        check_room(&r.room);
        round_trip(r);
    });
    extract::<ResumeRequest>(&value, |r| {
        reached!("resume");
        check_room(&r.room);
        assert!(MemberId::new(r.member.as_str()).is_ok());
        round_trip(r);
    });
    extract::<LeaveRequest>(&value, |r| {
        reached!("leave");
        check_room(&r.room)
    });
    extract::<MsgRequest>(&value, |r| {
        reached!("msg (to: {}, id: {})", r.to.is_some(), r.id.is_some());
        check_room(&r.room);
        if let Some(to) = &r.to {
            assert!(MemberId::new(to.as_str()).is_ok());
        }
    });
    extract::<ChunkRequest>(&value, |r| {
        reached!("chunk");
        check_room(&r.room);
        assert!(FileId::new(r.file.as_str()).is_ok());
    });
}

/// socketioxide's `TryData<T>`: decode the event's arguments (after its name) as `T`.
fn extract<T: serde::de::DeserializeOwned>(value: &socketioxide_core::Value, check: impl Fn(&T)) {
    // Extraction consumes the binary attachments, so each type gets a fresh copy.
    let mut value = value.clone();
    if let Ok(req) = CommonParser.decode_value::<T>(&mut value, true) {
        check(&req);
    }
}

fn check_room(room: &RoomId) {
    // Whatever got through must be a valid id.
    assert!(RoomId::new(room.as_str()).is_ok());
    assert_eq!(room.as_str().len(), 22);
}

/// A request accepted serializes back to JSON that reads as the same request (only for
/// requests without binary data: JSON has no bytes, and `Binary` refuses the numbers
/// serde_json writes them as, by design).
fn round_trip<T>(r: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_vec(r).expect("a request serializes");
    let again: T = serde_json::from_slice(&json).expect("its JSON reads back");
    assert_eq!(&again, r);
}

fn raw_json(bytes: &[u8]) {
    if let Ok(r) = serde_json::from_slice::<JoinRequest>(bytes) {
        reached!("raw join");
        check_room(&r.room);
        round_trip(&r);
    }
    if let Ok(r) = serde_json::from_slice::<ResumeRequest>(bytes) {
        reached!("raw resume");
        check_room(&r.room);
        round_trip(&r);
    }
    let _ = serde_json::from_slice::<RecoveryAuth>(bytes);
    let _ = serde_json::from_slice::<LeaveRequest>(bytes);
    let _ = serde_json::from_slice::<MsgRequest>(bytes);
    let _ = serde_json::from_slice::<ChunkRequest>(bytes);
}

fn ids(text: &str) {
    if let Ok(room) = RoomId::new(text) {
        assert_eq!(room.as_str().len(), 22);
    }
    if let Ok(file) = FileId::new(text) {
        assert_eq!(file.as_str().len(), 16);
    }
    if let Ok(member) = MemberId::new(text) {
        assert!((1..=64).contains(&member.as_str().len()));
    }
}
