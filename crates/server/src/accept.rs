//! TCP connections counted per address from the moment they are accepted.
//!
//! The session gate (`sessions.rs`) counts Engine.IO sessions from their handshake; a
//! TCP connection that never sends a complete request is no session, yet it holds a
//! file descriptor and a task. Two bounds close that gap: a connection must send its
//! first request within `--connect-timeout-secs` (and any request's headers within the
//! same time; `lib.rs` `serve`), and one address holds at most
//! [`tcp_per_ip`]`(--max-connections-per-ip)` connections at once. A connection past
//! that is closed as soon as it is accepted, before anything is read from it, so a
//! slowloris from one address cannot take the server's file descriptors from others.
//! Connections from trusted proxies (with `--trust-forwarded-for`) are not counted: a
//! proxy carries many clients, and the session gate counts those by forwarded address.

use crate::sessions::Proxies;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use std::collections::HashMap;
use std::future::Ready;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// TCP connections one address may hold for `sessions_per_ip` Engine.IO sessions: a
/// long-polling session uses two at a time (its GET and its POST), and a browser loads
/// the page over up to six more.
pub fn tcp_per_ip(sessions_per_ip: u32) -> u32 {
    sessions_per_ip.saturating_mul(2).saturating_add(16)
}

/// Counts open TCP connections per peer address and refuses those past the cap.
#[derive(Debug)]
pub struct AddressGuard {
    per_ip: u32,
    exempt: Option<Proxies>,
    open: Mutex<HashMap<IpAddr, u32>>,
    refused: Counter,
}

impl AddressGuard {
    /// At most `per_ip` connections per address; `exempt` peers are not counted.
    pub fn new(per_ip: u32, exempt: Option<Proxies>, refused: Counter) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            exempt,
            open: Mutex::new(HashMap::new()),
            refused,
        })
    }

    /// A place for a connection from `ip`, held until the permit is dropped; `None` if
    /// the address holds its maximum.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        if self.exempt.as_ref().is_some_and(|p| p.contains(ip)) {
            return Some(Permit(None));
        }
        let mut open = self.open.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= self.per_ip {
            drop(open);
            self.refused.inc();
            return None;
        }
        *n += 1;
        Some(Permit(Some((self.clone(), ip))))
    }

    /// Connections counted for `ip` now.
    #[cfg(test)]
    fn open(&self, ip: IpAddr) -> u32 {
        self.open.lock().get(&ip).copied().unwrap_or(0)
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock();
        if let Some(n) = open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// One counted connection; dropping it frees the place.
#[derive(Debug)]
pub struct Permit(Option<(Arc<AddressGuard>, IpAddr)>);

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some((guard, ip)) = self.0.take() {
            guard.release(ip);
        }
    }
}

/// An accepted TCP stream with its place: the place is freed when the connection is,
/// also after an upgrade to WebSocket (the stream lives on inside the upgrade).
#[derive(Debug)]
pub struct Counted {
    stream: TcpStream,
    _permit: Permit,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The acceptor: sets `TCP_NODELAY` (every event is written as soon as it is ready, as
/// Node's `ws` does: with Nagle's algorithm a second small frame waits for the first
/// one's ACK, which a client may delay by up to 40 ms) and takes a place for the
/// connection, or refuses it.
#[derive(Debug, Clone)]
pub struct Acceptor(pub Arc<AddressGuard>);

impl<S> axum_server::accept::Accept<TcpStream, S> for Acceptor {
    type Stream = Counted;
    type Service = S;
    type Future = Ready<io::Result<(Counted, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let admitted = stream.peer_addr().and_then(|peer| {
            self.0.admit(peer.ip()).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::ConnectionRefused,
                    "too many TCP connections from this address",
                )
            })
        });
        std::future::ready(admitted.map(|permit| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
            (
                Counted {
                    stream,
                    _permit: permit,
                },
                service,
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_holds_at_most_its_cap_and_a_closed_connection_frees_its_place() {
        let refused = Counter::default();
        let guard = AddressGuard::new(2, None, refused.clone());
        let a: IpAddr = "127.0.0.2".parse().unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "127.0.0.3".parse().unwrap_or(IpAddr::from([0; 4]));
        let first = guard.admit(a);
        let second = guard.admit(a);
        assert!(first.is_some() && second.is_some());
        assert!(
            guard.admit(a).is_none(),
            "the third from one address is refused"
        );
        assert!(guard.admit(b).is_some(), "another address is not affected");
        assert_eq!(refused.get(), 1);
        drop(first);
        assert_eq!(guard.open(a), 1);
        assert!(
            guard.admit(a).is_some(),
            "a closed connection frees its place"
        );
        drop(second);
        assert_eq!(guard.open(b), 0, "a permit dropped at once freed its place");
    }

    #[test]
    fn trusted_proxies_are_not_counted() {
        let proxies = Proxies::parse("10.0.0.0/8").ok();
        let guard = AddressGuard::new(1, proxies, Counter::default());
        let proxy: IpAddr = "10.1.2.3".parse().unwrap_or(IpAddr::from([0; 4]));
        let held: Vec<_> = (0..5).map(|_| guard.admit(proxy)).collect();
        assert!(held.iter().all(Option::is_some));
        assert_eq!(guard.open(proxy), 0);
    }
}
