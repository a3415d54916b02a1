//! The body of an Engine.IO long-polling POST as the server reads it: engineioxide-core's
//! payload decoder (protocol v4: packets separated by 0x1e, binary packets as `b` and
//! standard base64), fed in arbitrary chunks, and each packet handled as
//! `post_req` (vendor/engineioxide/src/transport/polling.rs) hands it on: messages to
//! socketioxide's common parser and binary packets as its attachments, with one parser
//! state for the whole body.
//!
//! Input: byte 0, the size of the body's chunks (0: one chunk), so packets, separators
//! and UTF-8 sequences fall across chunk boundaries as they do on the network; byte 1,
//! the payload limit (0: the server's, `max(max_message_bytes, max_chunk_bytes)` + 64 KiB;
//! else that many bytes, so the limit's edge is reached with short inputs); then the body.
//!
//! Nothing may panic. Besides:
//! - a body over the limit never decodes to its end: the decoder refuses it
//!   (`PayloadTooLarge`);
//! - every packet decoded is re-read identically from its own encoding (`String::from`),
//!   and the packets' bytes add up to no more than the body's.

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use bytes::Bytes;
use engineioxide_core::payload;
use engineioxide_core::{Packet, PacketParseError, ProtocolVersion};
use futures_util::StreamExt;
use http_body::{Body, Frame};
use libfuzzer_sys::fuzz_target;
use socketioxide_core::parser::{Parse, ParseConfig, ParseError, ParserState};
use socketioxide_parser_common::CommonParser;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The server's limit: the largest message or chunk (defaults) plus 64 KiB of header.
const SERVER_MAX_PAYLOAD: u64 = 1024 * 1024 + 64 * 1024;

/// A request body arriving in chunks.
struct Chunks(VecDeque<Bytes>);

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&[chunk, limit], body)) = input.split_first_chunk::<2>() else {
        return;
    };
    let max_payload = if limit == 0 {
        SERVER_MAX_PAYLOAD
    } else {
        u64::from(limit)
    };
    let chunk = if chunk == 0 {
        body.len().max(1)
    } else {
        usize::from(chunk)
    };
    let chunks: VecDeque<Bytes> = body.chunks(chunk).map(Bytes::copy_from_slice).collect();

    let config = ParseConfig {
        max_incoming_binary_buf_size: SERVER_MAX_PAYLOAD as usize,
        ..ParseConfig::default()
    };
    let state = ParserState::default();
    let mut pending = false;

    let packets = payload::decoder(Chunks(chunks), None, ProtocolVersion::V4, max_payload);
    futures_util::pin_mut!(packets);
    let mut decoded = 0usize;
    let mut exhausted = false;
    loop {
        let packet = match futures_executor::block_on(packets.next()) {
            None => {
                exhausted = true;
                break;
            }
            Some(Ok(p)) => p,
            Some(Err(PacketParseError::PayloadTooLarge { max })) => {
                assert_eq!(max, max_payload);
                break;
            }
            // The server closes the session on the first packet that does not parse.
            Some(Err(_)) => break,
        };
        let text = String::from(packet.clone());
        decoded += text.len();
        let again = Packet::parse(ProtocolVersion::V4, text).expect("an encoded packet parses");
        assert_eq!(again, packet, "a packet reads back from its own encoding");
        match packet {
            Packet::Close => break,
            Packet::Message(msg) => {
                reached!("message");
                let result = CommonParser.decode_str(&config, &state, msg);
                if result.is_ok() {
                    reached!("socket.io packet");
                }
                pending = matches!(result, Err(ParseError::NeedsMoreBinaryData));
            }
            Packet::Binary(bin) => {
                reached!("binary");
                if pending {
                    let result = CommonParser.decode_bin(&config, &state, bin);
                    if result.is_ok() {
                        reached!("socket.io binary packet");
                    }
                    pending = matches!(result, Err(ParseError::NeedsMoreBinaryData));
                }
            }
            // Ping/pong feed the heartbeat; anything else is a bad packet that ends the request.
            Packet::Ping | Packet::Pong => {}
            _ => break,
        }
    }
    if exhausted {
        reached!("body read to its end");
        assert!(
            body.len() as u64 <= max_payload,
            "a body over the limit is refused"
        );
    }
    // Each packet is its own bytes in the body (base64 is canonical), less separators.
    assert!(decoded <= body.len());
});
