//! An HTTP request to `/socket.io/` as the server reads it before any session exists:
//! the request line's URI, the Engine.IO query and the client's address.
//!
//! Input: byte 0 chooses the method (bit 0: GET or POST) and the peer address (bits 1-2:
//! a trusted proxy over IPv4, over IPv6, an IPv4 proxy behind a dual-stack socket, an
//! untrusted client); byte 1 the `--trusted-proxies` list (none, one address, networks
//! of both families, everything); then lines: the first is the query string, each later
//! one an `X-Forwarded-For` header value (any bytes).
//!
//! 1. The URI is parsed as hyper does (`http::Uri` from the request line's bytes).
//! 2. The server's request mapper (`compact_socket_io_request`, crates/server/src/http.rs)
//!    copies the URI and the headers it keeps.
//! 3. The Engine.IO query is read as engineioxide's `RequestInfo::parse` reads it
//!    (vendor/engineioxide/src/service/parser.rs, crate-private there, so its dozen lines
//!    are mirrored here): `EIO` with `ProtocolVersion::from_str`, `sid` with
//!    `Sid::from_str`, `transport` with `TransportType::from_str`.
//! 4. The session gate's address (`client_ip`, crates/server/src/sessions.rs): the last
//!    `X-Forwarded-For` entry when the peer is a trusted proxy, else the peer.
//!
//! Nothing may panic. Besides:
//! - the mapper keeps the URI exactly and the forwarded header values byte for byte, in
//!   order, and drops every header it does not keep;
//! - an accepted `sid` prints as the text it was read from (one session, one spelling);
//! - a client that is not a trusted proxy is always counted at its own address, whatever
//!   it forwards; a trusted proxy's client is its own address or one that the header
//!   names; `Proxies::contains` agrees with a plain bit-mask reference.

#![no_main]

#[path = "../common/reached.rs"]
mod reached;
use reached::reached;

use axum::extract::ConnectInfo;
use engineioxide_core::{ProtocolVersion, Sid, TransportType};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::LazyLock;
use streamchat_server::fuzzing::{Proxies, client_ip, compact_socket_io_request};

const PEERS: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001)), // ::ffff:10.0.0.1
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
];

const PROXY_LISTS: [&str; 4] = [
    "",
    "127.0.0.1",
    "10.0.0.0/8, ::1, fd00::/8",
    "0.0.0.0/0, ::/0",
];

static PROXIES: LazyLock<Vec<Option<Proxies>>> = LazyLock::new(|| {
    PROXY_LISTS
        .iter()
        .map(|list| (!list.is_empty()).then(|| Proxies::parse(list).expect("valid list")))
        .collect()
});

/// The networks of a proxy list, as (address as u128 with IPv4 mapped, prefix length).
fn reference_nets(list: &str) -> Vec<(IpAddr, u8)> {
    list.split(',')
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(|item| match item.split_once('/') {
            Some((a, b)) => (a.parse().expect("address"), b.parse().expect("bits")),
            None => {
                let a: IpAddr = item.parse().expect("address");
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        })
        .collect()
}

/// Plain bit-mask reference for `Proxies::contains`.
fn reference_contains(list: &str, ip: IpAddr) -> bool {
    let v4 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => Some(u32::from(a)),
        IpAddr::V6(a) => a.to_ipv4_mapped().map(u32::from),
    };
    reference_nets(list)
        .into_iter()
        .any(|(net, bits)| match net {
            IpAddr::V4(n) => v4(ip).is_some_and(|i| {
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(bits))
                };
                (u32::from(n) & mask) == (i & mask)
            }),
            IpAddr::V6(n) => match ip {
                IpAddr::V6(i) => {
                    let mask = if bits == 0 {
                        0
                    } else {
                        u128::MAX << (128 - u32::from(bits))
                    };
                    (u128::from(n) & mask) == (u128::from(i) & mask)
                }
                IpAddr::V4(_) => false,
            },
        })
}

fuzz_target!(|input: &[u8]| {
    let Some((&[how, which], rest)) = input.split_first_chunk::<2>() else {
        return;
    };
    let method = if how & 1 == 0 {
        http::Method::GET
    } else {
        http::Method::POST
    };
    let peer = PEERS[usize::from(how >> 1) % PEERS.len()];
    let list_index = usize::from(which) % PROXY_LISTS.len();
    let trusted = PROXIES[list_index].as_ref();

    let mut lines = rest.split(|&b| b == b'\n');
    let query = lines.next().unwrap_or_default();
    let forwarded: Vec<&[u8]> = lines.collect();

    // 1. The request line's URI, as hyper hands it over.
    let mut target = b"/socket.io/?".to_vec();
    target.extend_from_slice(query);
    let Ok(uri) = http::Uri::try_from(target) else {
        return;
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(uri.clone())
        .header("host", "chat.example")
        .header("cookie", "dropped=1")
        .header("user-agent", "fuzz");
    let mut kept_values = Vec::new();
    for value in &forwarded {
        if let Ok(v) = http::HeaderValue::from_bytes(value) {
            kept_values.push(v.clone());
            builder = builder.header("x-forwarded-for", v);
        }
    }
    let Ok(request) = builder
        .extension(ConnectInfo(SocketAddr::new(peer, 40000)))
        .body(axum::body::Body::empty())
    else {
        return;
    };

    // 2. The server's request mapper.
    let request = futures_executor::block_on(compact_socket_io_request(request));
    assert_eq!(request.uri(), &uri, "the URI is kept exactly");
    let got: Vec<_> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .cloned()
        .collect();
    assert_eq!(
        got, kept_values,
        "forwarded addresses are kept byte for byte, in order"
    );
    assert!(
        request.headers().get("cookie").is_none() && request.headers().get("user-agent").is_none()
    );
    assert!(request.headers().get("host").is_some());
    reached!("request mapped");
    let (parts, _) = request.into_parts();

    // 3. engineioxide's RequestInfo::parse, step by step.
    if let Some(query) = parts.uri.query() {
        let _protocol: Option<ProtocolVersion> = query
            .split('&')
            .find(|s| s.starts_with("EIO="))
            .and_then(|s| s.split('=').nth(1))
            .and_then(|t| t.parse().ok());
        if let Some(text) = query.split('&').find_map(|s| s.strip_prefix("sid=")) {
            if let Ok(sid) = Sid::from_str(text) {
                reached!("sid");
                assert_eq!(sid.to_string(), text, "one session id, one spelling");
            }
        }
        let _transport: Option<TransportType> = query
            .split('&')
            .find(|s| s.starts_with("transport="))
            .and_then(|s| s.split('=').nth(1))
            .and_then(|t| t.parse().ok());
    }

    // 4. The session gate's address.
    let ip = client_ip(&parts, trusted);
    let list = PROXY_LISTS[list_index];
    let peer_trusted = trusted.is_some_and(|p| p.contains(peer));
    assert_eq!(peer_trusted, reference_contains(list, peer));
    if !peer_trusted {
        assert_eq!(
            ip, peer,
            "an untrusted client cannot choose the address it is counted at"
        );
    } else if ip != peer {
        reached!("forwarded address");
        let named = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|entry| entry.trim().parse::<IpAddr>().ok() == Some(ip));
        assert!(
            named,
            "a proxy's client is counted at an address the proxy named"
        );
    }
    if let Some(proxies) = trusted {
        assert_eq!(proxies.contains(ip), reference_contains(list, ip));
    }
});
