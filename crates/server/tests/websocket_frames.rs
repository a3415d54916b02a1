//! WebSocket frames that reach the server in pieces, as TCP may deliver them.
//!
//! Regression test for the vendored tungstenite's idle-buffer patch (vendor/README.md):
//! it gave the read buffer back whenever a read found nothing and the buffer was empty,
//! also between a frame's header and its payload, and the next read then went into an
//! empty buffer, read nothing, and took that for the end of the connection: a client
//! whose frame header arrived alone was cut off. Found by fuzz/websocket_frames.

// Integration tests panic on failure: that is the report we want.
#![allow(clippy::unwrap_used)]

use clap::Parser;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use streamchat_server::ServeConfig;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeConfig,
}

/// A masked client frame (FIN set) with a payload under 126 bytes, as header and payload.
fn client_frame(opcode: u8, payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let len = u8::try_from(payload.len()).unwrap();
    assert!(len < 126);
    let mut header = vec![0x80 | opcode, 0x80 | len];
    header.extend_from_slice(&mask);
    let masked = payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[i % 4])
        .collect();
    (header, masked)
}

/// Reads one (unmasked) server frame: its opcode and payload.
fn server_frame(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).unwrap();
    let len = match head[1] & 0x7f {
        126 => {
            let mut n = [0u8; 2];
            stream.read_exact(&mut n).unwrap();
            u64::from(u16::from_be_bytes(n))
        }
        127 => {
            let mut n = [0u8; 8];
            stream.read_exact(&mut n).unwrap();
            u64::from_be_bytes(n)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    stream.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// Upgrades to a WebSocket and reads Engine.IO's open packet.
fn open_websocket(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    write!(
        stream,
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        response.push(byte[0]);
    }
    assert!(
        response.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    let (opcode, open) = server_frame(&mut stream);
    assert_eq!((opcode, open.first()), (1, Some(&b'0')), "engine.io open");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_whose_payload_comes_after_its_header_is_read_whole() {
    let config = Cli::try_parse_from(["streamchat"]).unwrap().serve;
    config.validate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(streamchat_server::run(listener, config, async move {
        let _ = stopped.await;
    }));

    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = open_websocket(addr);
        // Socket.IO CONNECT ("40"): the header first, then, once the server has looked
        // for more and found nothing, the payload.
        let (header, payload) = client_frame(1, b"40");
        stream.write_all(&header).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        stream.write_all(&payload).unwrap();
        loop {
            match server_frame(&mut stream) {
                (1, ping) if ping == b"2" => continue,
                frame => break frame,
            }
        }
    })
    .await
    .unwrap();
    let (opcode, text) = answer;
    assert_eq!(opcode, 1);
    assert!(
        text.starts_with(b"40{\"sid\":"),
        "the server answers the connect: {}",
        String::from_utf8_lossy(&text)
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
