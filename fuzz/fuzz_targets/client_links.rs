//! Invite links as the terminal client reads them (`Invite::parse`,
//! crates/client/src/invite.rs): pasted by a person, made by someone else, so untrusted;
//! the server address it yields becomes the WebSocket URL (`websocket_url`). The room
//! secret part (`RoomSecret::from_link`) is also fuzzed by `crypto_open`.
//!
//! Input: the link, as text.
//!
//! Nothing may panic. What is accepted is usable and canonical:
//! - the server URL is `http://` or `https://`, holds no `#` and no trailing `/`;
//! - the link the invite prints reads back to the same server and secret;
//! - the WebSocket URL is `ws://` or `wss://` of the same place, ending in the Engine.IO
//!   path and query, and carries no fragment (the secret never goes to the server).

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use libfuzzer_sys::fuzz_target;
use streamchat_client::{Invite, websocket_url};

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let url = websocket_url(text);
    assert!(url.ends_with("/socket.io/?EIO=4&transport=websocket"));
    let Ok(invite) = Invite::parse(text) else {
        return;
    };
    reached!("invite");
    let server = &invite.server_url;
    assert!(
        server.starts_with("http://") || server.starts_with("https://"),
        "{server:?}"
    );
    assert!(
        !server.contains('#') && !server.ends_with('/'),
        "{server:?}"
    );
    let again = Invite::parse(&invite.link()).expect("a printed link reads back");
    assert_eq!(&again.server_url, server);
    assert_eq!(again.secret.as_bytes(), invite.secret.as_bytes());
    assert_eq!(again.kind, invite.kind, "a v2 link reads back as the same kind of room");
    let ws = websocket_url(server);
    let rest = server.strip_prefix("https://").map_or_else(
        || format!("ws://{}", &server["http://".len()..]),
        |rest| format!("wss://{rest}"),
    );
    assert!(ws.starts_with(&rest), "{ws:?} is not at {server:?}");
    assert!(
        !ws.contains('#'),
        "the fragment (the secret) stays out of the URL"
    );
});
