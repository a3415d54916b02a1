//! Engine.IO sessions counted from their handshake.
//!
//! A session costs memory from its first request, long before it connects to the
//! namespace (or never does). So every new session passes this gate at its handshake,
//! polling or WebSocket: it counts against its address's cap (`--max-connections-per-ip`)
//! and the server's (`--max-sessions`) until it closes, and each address may open only so
//! many per second (`--handshakes-per-ip-per-second`, with a burst as large as its cap).
//! A session that does not connect to the namespace within `--connect-timeout-secs` is
//! closed by socketioxide. A refusal is HTTP 429 (this address) or 503 (the server) with
//! `Retry-After` and a JSON `{code, message}`; sessions already open are not touched.

use crate::limits::TokenBucket;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use socketioxide::{SessionGate, SessionRefused};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

/// Addresses remembered at most (with open sessions or a bucket still refilling): past
/// it, new addresses are refused like a full server, so the table itself is bounded.
const MAX_ADDRESSES: usize = 200_000;

/// Addresses and networks whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proxies(Vec<(IpAddr, u8)>);

impl Proxies {
    /// Parses `a.b.c.d`, `a.b.c.d/n` and IPv6 forms, comma-separated; the first entry that
    /// is neither is the error.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| item.to_owned())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or(item.to_owned())?,
                None => max,
            };
            nets.push((addr, bits));
        }
        Ok(Self(nets))
    }

    /// True if `ip` is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => prefix_eq(&n.octets(), &i.octets(), *bits),
            (IpAddr::V6(n), IpAddr::V6(i)) => prefix_eq(&n.octets(), &i.octets(), *bits),
            (IpAddr::V4(n), IpAddr::V6(i)) => i
                .to_ipv4_mapped()
                .is_some_and(|i| prefix_eq(&n.octets(), &i.octets(), *bits)),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        })
    }
}

/// The first `bits` bits of `a` and `b` are the same.
fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    a[..whole] == b[..whole] && (rest == 0 || (a[whole] ^ b[whole]) & (0xffu8 << (8 - rest)) == 0)
}

/// The client address of a request: the last `X-Forwarded-For` entry when the peer is a
/// trusted proxy, else the peer address.
pub fn client_ip(parts: &axum::http::request::Parts, trusted: Option<&Proxies>) -> IpAddr {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = trusted
        .filter(|proxies| peer.is_some_and(|p| proxies.contains(p)))
        .and_then(|_| parts.headers.get("x-forwarded-for"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    forwarded
        .or(peer)
        // Served without connect info (in-process tests): one shared bucket.
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

#[derive(Debug)]
struct Address {
    open: u32,
    handshakes: TokenBucket,
}

/// The limits a gate enforces.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Open sessions per address.
    pub per_ip: u32,
    /// Open sessions in all.
    pub total: usize,
    /// New sessions per address per second (sustained).
    pub handshakes_per_second: u32,
    /// New sessions per address at once.
    pub handshake_burst: u32,
    /// Take the address from `X-Forwarded-For` on connections from these proxies.
    pub trusted: Option<Proxies>,
}

/// Counts open sessions per address and in all; see the module documentation.
#[derive(Debug)]
pub struct Sessions {
    limits: SessionLimits,
    addresses: Mutex<HashMap<IpAddr, Address>>,
    open: AtomicUsize,
    /// Sessions open, for `/metrics`.
    gauge: Gauge,
    /// Refusals, for `/metrics`.
    refused: Counter,
}

/// Why a session was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address holds its maximum of sessions.
    AddressFull,
    /// The address opens sessions too fast.
    TooFast,
    /// The server holds its maximum of sessions.
    ServerFull,
}

impl Refusal {
    fn answer(self) -> SessionRefused {
        match self {
            Self::AddressFull => SessionRefused {
                status: 429,
                retry_after_secs: 5,
                code: "rate_limited",
                message: "too many connections from this address",
            },
            Self::TooFast => SessionRefused {
                status: 429,
                retry_after_secs: 1,
                code: "rate_limited",
                message: "too many new connections from this address: wait a moment",
            },
            Self::ServerFull => SessionRefused {
                status: 503,
                retry_after_secs: 10,
                code: "unavailable",
                message: "the server holds its maximum of connections: try again soon",
            },
        }
    }
}

impl Sessions {
    /// A gate with these limits, counting in `gauge` and `refused`.
    pub fn new(limits: SessionLimits, gauge: Gauge, refused: Counter) -> Self {
        Self {
            limits,
            addresses: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            gauge,
            refused,
        }
    }

    /// The client address of a request, as the limits count it.
    pub fn client_ip(&self, parts: &axum::http::request::Parts) -> IpAddr {
        client_ip(parts, self.limits.trusted.as_ref())
    }

    /// The proxies whose `X-Forwarded-For` is believed, if any.
    pub fn trusted(&self) -> Option<&Proxies> {
        self.limits.trusted.as_ref()
    }

    /// Sessions open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Admits a new session from `ip` at `now`, or says why not.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let l = &self.limits;
        let mut addresses = self.addresses.lock();
        if addresses.len() >= MAX_ADDRESSES {
            addresses.retain(|_, a| a.open > 0 || !a.handshakes.is_full(now));
        }
        if !addresses.contains_key(&ip) && addresses.len() >= MAX_ADDRESSES {
            return Err(Refusal::ServerFull);
        }
        let address = addresses.entry(ip).or_insert_with(|| Address {
            open: 0,
            handshakes: TokenBucket::new(
                u64::from(l.handshake_burst),
                u64::from(l.handshakes_per_second),
                now,
            ),
        });
        if address.open >= l.per_ip {
            return Err(Refusal::AddressFull);
        }
        if !address.handshakes.has(1, now) {
            return Err(Refusal::TooFast);
        }
        if self.open.load(Ordering::Relaxed) >= l.total {
            return Err(Refusal::ServerFull);
        }
        address.handshakes.take(1);
        address.open += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        self.gauge.inc();
        Ok(())
    }

    /// A session admitted from `ip` closed.
    pub fn release(&self, ip: IpAddr, now: Instant) {
        let mut addresses = self.addresses.lock();
        if let Some(a) = addresses.get_mut(&ip) {
            a.open = a.open.saturating_sub(1);
            self.open.fetch_sub(1, Ordering::Relaxed);
            self.gauge.dec();
            if a.open == 0 && a.handshakes.is_full(now) {
                addresses.remove(&ip);
            }
        }
    }

    /// Addresses remembered now.
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.addresses.lock().len()
    }
}

impl SessionGate for Sessions {
    fn open(&self, req: &axum::http::request::Parts) -> Result<(), SessionRefused> {
        let ip = self.client_ip(req);
        self.admit(ip, Instant::now()).map_err(|r| {
            self.refused.inc();
            r.answer()
        })
    }

    fn close(&self, req: &axum::http::request::Parts) {
        let ip = self.client_ip(req);
        self.release(ip, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn trusted_proxies_are_addresses_and_networks() {
        let p = Proxies::parse("127.0.0.0/8, 10.1.2.3, fd00::/8").unwrap();
        assert!(p.contains("127.9.9.9".parse().unwrap()));
        assert!(p.contains("10.1.2.3".parse().unwrap()));
        assert!(!p.contains("10.1.2.4".parse().unwrap()));
        assert!(p.contains("fd12::1".parse().unwrap()));
        assert!(!p.contains("fe80::1".parse().unwrap()));
        assert!(
            p.contains("::ffff:127.0.0.1".parse().unwrap()),
            "IPv4 behind a dual-stack socket"
        );
        assert!(
            !Proxies::parse("10.0.0.0/8")
                .unwrap()
                .contains("11.0.0.1".parse().unwrap())
        );
        assert!(Proxies::parse("10.0.0.0/33").is_err());
        assert!(Proxies::parse("proxy.example").is_err());
        assert!(
            Proxies::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    fn gate(per_ip: u32, total: usize, rate: u32, burst: u32) -> Sessions {
        Sessions::new(
            SessionLimits {
                per_ip,
                total,
                handshakes_per_second: rate,
                handshake_burst: burst,
                trusted: None,
            },
            Gauge::default(),
            Counter::default(),
        )
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))
    }

    #[test]
    fn an_address_holds_at_most_its_cap_and_a_close_frees_a_place() {
        let g = gate(3, 100, 1000, 1000);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(g.admit(ip(1), now), Ok(()));
        }
        assert_eq!(g.admit(ip(1), now), Err(Refusal::AddressFull));
        assert_eq!(
            g.admit(ip(2), now),
            Ok(()),
            "another address is not affected"
        );
        g.release(ip(1), now);
        assert_eq!(g.admit(ip(1), now), Ok(()));
        assert_eq!(g.open(), 4);
    }

    #[test]
    fn handshakes_are_paced_per_address() {
        let g = gate(100, 100, 2, 3);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(g.admit(ip(1), now), Ok(()));
        }
        assert_eq!(g.admit(ip(1), now), Err(Refusal::TooFast));
        assert_eq!(g.admit(ip(1), now + Duration::from_millis(500)), Ok(()));
        assert_eq!(g.open(), 4, "a refusal opens nothing");
    }

    #[test]
    fn the_server_cap_counts_every_address() {
        let g = gate(10, 5, 1000, 1000);
        let now = Instant::now();
        for n in 0..5 {
            assert_eq!(g.admit(ip(n), now), Ok(()));
        }
        assert_eq!(g.admit(ip(9), now), Err(Refusal::ServerFull));
        g.release(ip(0), now);
        assert_eq!(g.admit(ip(9), now), Ok(()));
    }

    #[test]
    fn idle_addresses_are_forgotten_once_their_bucket_is_full() {
        let g = gate(10, 100, 10, 10);
        let now = Instant::now();
        g.admit(ip(1), now).unwrap();
        g.release(ip(1), now);
        assert_eq!(g.addresses(), 1, "the spent handshake is remembered");
        g.admit(ip(1), now + Duration::from_secs(1)).unwrap();
        g.release(ip(1), now + Duration::from_secs(2));
        assert_eq!(g.addresses(), 0);
    }
}
