//! WebSocket frames from a client as the server reads them: the vendored tungstenite
//! (vendor/tungstenite, with the server's read-buffer patch) reading a server-side
//! connection with the server's limits (crates/server/src/lib.rs `app`: messages and
//! frames up to the largest message or chunk plus 64 KiB; engineioxide's 4 KiB read
//! buffer; masked frames only), then each text message through engine.io's packet parser
//! as engineioxide's WebSocket transport does (vendor/engineioxide/src/transport/ws.rs).
//!
//! Input: byte 0 is the size of the reads the network delivers (0: everything at once),
//! with a "nothing more yet" (`WouldBlock`) between reads, as a non-blocking socket
//! gives them; then the bytes the client sends after the upgrade: frame headers,
//! lengths, masks, fragments, control frames, anything.
//!
//! Nothing may panic or allocate past the limits (the runs use `-malloc_limit_mb`).
//! Besides:
//! - a text message is valid UTF-8: engineioxide turns it into a string without checking
//!   again (`ws_bytes_to_str`, an `unsafe` conversion that relies on tungstenite);
//! - no message is larger than the limit, no control payload larger than 125 bytes;
//! - what comes out is no larger than what went in (no message is made of bytes the
//!   client did not send).

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use engineioxide_core::{Packet, ProtocolVersion};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use tungstenite::protocol::{Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// The server's message and frame limit with the default sizes: 1 MiB + 64 KiB.
const LIMIT: usize = 1024 * 1024 + 64 * 1024;

/// A non-blocking connection: the client's bytes in reads of a fixed size, with a
/// `WouldBlock` after each read; what the server writes is counted and dropped.
struct Wire {
    reads: VecDeque<Vec<u8>>,
    pause: bool,
    written: usize,
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if std::mem::take(&mut self.pause) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let Some(front) = self.reads.front_mut() else {
            return Ok(0);
        };
        let n = buf.len().min(front.len());
        buf[..n].copy_from_slice(&front[..n]);
        front.drain(..n);
        if front.is_empty() {
            self.reads.pop_front();
            self.pause = !self.reads.is_empty();
        }
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&read_size, bytes)) = input.split_first() else {
        return;
    };
    let size = if read_size == 0 {
        bytes.len().max(1)
    } else {
        usize::from(read_size)
    };
    let wire = Wire {
        reads: bytes.chunks(size).map(<[u8]>::to_vec).collect(),
        pause: false,
        written: 0,
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(LIMIT))
        .max_frame_size(Some(LIMIT));
    let mut ws = WebSocket::from_raw_socket(wire, Role::Server, Some(config));

    let mut out = 0usize;
    // Every read either takes bytes, pauses once between reads, or ends the connection.
    for _ in 0..=2 * bytes.len() + 4 {
        match ws.read() {
            Ok(message) => {
                match &message {
                    Message::Text(text) => {
                        reached!("text");
                        assert!(
                            std::str::from_utf8(text.as_bytes()).is_ok(),
                            "text is UTF-8"
                        );
                        assert!(text.len() <= LIMIT);
                        out += text.len();
                        let _ = Packet::parse(ProtocolVersion::V4, text.as_str().to_owned());
                    }
                    Message::Binary(data) => {
                        reached!("binary");
                        assert!(data.len() <= LIMIT);
                        out += data.len();
                    }
                    Message::Ping(data) | Message::Pong(data) => {
                        reached!("ping or pong");
                        assert!(data.len() <= 125);
                        out += data.len();
                    }
                    Message::Close(frame) => {
                        reached!("close");
                        if let Some(frame) = frame {
                            assert!(frame.reason.len() <= 123);
                        }
                    }
                    Message::Frame(_) => unreachable!("only the writing side makes raw frames"),
                }
                assert!(out <= bytes.len(), "nothing comes out that did not go in");
            }
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
});
