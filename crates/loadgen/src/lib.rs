//! The load generator behind `streamchat bench`, built on the client library
//! (`streamchat-client`). The command line lives in the `streamchat` binary, which
//! turns its arguments into a [`BenchConfig`] and prints the [`BenchReport`] of [`run`].
//!
//! N clients join R rooms (client `i` joins room `i mod R`); the first S clients send at
//! a fixed rate each for a fixed time; every client counts what it receives. Payloads
//! carry the send time, so each delivery gives a latency ([`payload`]); with `--seal`
//! they are real sealed, signed v1 messages that every receiver opens and verifies.
//!
//! It reports one JSON line ([`BenchReport`]): connect time, messages sent, acked and
//! refused (by error code: the server's limits are reported, never hidden), deliveries
//! against those expected (every acked message once to every other member of its room),
//! loss, delivered messages per second, latency percentiles, its own CPU seconds, and
//! with `--server-pid` the server's CPU seconds and memory ([`procstat`]).
//!
//! Safety rails: the target must be a loopback address unless `--allow-remote`; counts,
//! rates and durations are bounded; the run stops by itself (connect phase, then the
//! sending window, then a short drain, all with deadlines). For many connections the
//! client sockets are bound to source addresses spread over 127.0.0.2–127.0.0.250, so
//! the server's per-address connection limit applies per 249th of the clients.
//!
//! For heavy runs, raise the server's limits: `--max-connections-per-ip` (default 64),
//! `--messages-per-second`/`--message-burst` (20/40 per connection),
//! `--max-members-per-room` (1000) and `--send-buffer-packets` (256 per receiver).

pub mod histogram;
pub mod payload;
pub mod procstat;

use bytes::Bytes;
use histogram::Histogram;
use payload::Stamp;
use procstat::Process;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamchat_client::session::{now_ms, protocol_room_id};
use streamchat_client::{Client, ClientError, ConnectOptions, ServerEvent};
use streamchat_crypto::{IdentityKey, MemberId as CryptoMemberId, PublicKey, RoomKeys, RoomSecret};
use streamchat_protocol::RoomId;
use tokio::sync::{Semaphore, watch};

/// Bounds on the arguments, so that a typo cannot start an unbounded run.
pub const MAX_CLIENTS: usize = 20_000;
/// Longest sending window, seconds.
pub const MAX_DURATION_SECS: u64 = 600;
/// Highest rate per sender, messages per second.
pub const MAX_RATE: f64 = 1000.0;
/// Largest payload, bytes (the server refuses above its `--max-message-bytes`).
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Source addresses used for spreading: 127.0.0.2 to 127.0.0.250.
const SOURCE_ADDRESSES: u8 = 249;

/// What to run: the options of `streamchat bench` (the same names, as flags there).
/// [`Default`] gives the command line's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfig {
    /// The server, e.g. http://127.0.0.1:8000, or several nodes of one cluster separated
    /// by commas (client i connects to the i-th modulo their number). Must be loopback
    /// unless --allow-remote.
    pub url: String,
    /// Clients to connect (at most 20000).
    pub clients: usize,
    /// Rooms to spread them over (client i joins room i mod ROOMS).
    pub rooms: usize,
    /// How many of the clients send (the first SENDERS, so spread over the rooms).
    pub senders: usize,
    /// Messages per second per sender (at most 1000).
    pub rate: f64,
    /// Payload bytes per message (before sealing).
    pub payload: usize,
    /// Length of the sending window, seconds (at most 600).
    pub duration: u64,
    /// Send real sealed, signed messages; receivers open and verify each one.
    pub seal: bool,
    /// Worker threads of the benchmark's runtime.
    pub threads: usize,
    /// The server's PID, to report its CPU seconds and memory (read from /proc).
    pub server_pid: Option<u32>,
    /// Allow a non-loopback server. Only for servers you run yourself.
    pub allow_remote: bool,
    /// Connections being set up at once.
    pub connect_concurrency: usize,
    /// Longest time for connecting everyone, seconds; whoever is not in by then is left out.
    pub connect_timeout: u64,
    /// Do not spread client source addresses over 127.0.0.2–127.0.0.250.
    pub no_spread: bool,
    /// How long to wait for deliveries after the sending window, seconds.
    pub drain: u64,
    /// Messages a sender may have awaiting their ack; a tick beyond is skipped (and counted).
    pub max_in_flight: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8000".to_owned(),
            clients: 100,
            rooms: 10,
            senders: 10,
            rate: 5.0,
            payload: 256,
            duration: 10,
            seal: false,
            threads: 2,
            server_pid: None,
            allow_remote: false,
            connect_concurrency: 64,
            connect_timeout: 120,
            no_spread: false,
            drain: 3,
            max_in_flight: 64,
        }
    }
}

/// The arguments do not describe a run this tool will do.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Out of bounds or inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// The target is not loopback.
    #[error(
        "{0} is not a loopback address; pass --allow-remote to load a server you run elsewhere"
    )]
    Remote(String),
    /// Randomness for keys failed.
    #[error(transparent)]
    Randomness(#[from] streamchat_crypto::RandomnessUnavailable),
    /// The runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Latency or time percentiles, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.quantile(0.50)),
            p95: ms(h.quantile(0.95)),
            p99: ms(h.quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// The server's resource use, from /proc.
#[derive(Debug, Clone, Serialize)]
pub struct ServerUsage {
    /// Its PID.
    pub pid: u32,
    /// CPU seconds (user + system) it used during the run.
    pub cpu_s: Option<f64>,
    /// Resident memory at the end, KiB.
    pub rss_kib: Option<u64>,
    /// Peak resident memory over its life, KiB.
    pub rss_peak_kib: Option<u64>,
}

/// The one JSON line `streamchat bench` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The server URL.
    pub url: String,
    /// Clients asked for.
    pub clients: usize,
    /// Clients connected and joined.
    pub connected: usize,
    /// Rooms.
    pub rooms: usize,
    /// Senders that were connected.
    pub senders: usize,
    /// Messages per second per sender.
    pub rate: f64,
    /// Payload bytes.
    pub payload_bytes: usize,
    /// Whether messages were sealed and verified.
    pub sealed: bool,
    /// Worker threads.
    pub threads: usize,
    /// Distinct source addresses used.
    pub source_addresses: usize,
    /// Seconds to connect and join everyone.
    pub connect_s: f64,
    /// Per-client connect + join time, ms.
    pub connect_ms: Percentiles,
    /// Length of the sending window, seconds.
    pub duration_s: f64,
    /// Messages the senders should have sent at their rate; `sent` below it means the
    /// benchmark itself could not keep up (its CPU is in `cpu_s`).
    pub planned: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages the server acked.
    pub acked: u64,
    /// Refusals, by phase (`connect`, `join`, `msg`) and error code.
    pub refused: BTreeMap<String, BTreeMap<String, u64>>,
    /// Send ticks skipped because a sender had `max_in_flight` messages awaiting acks.
    pub skipped: u64,
    /// Deliveries counted by receivers.
    pub delivered: u64,
    /// Deliveries expected: each acked message once to each other member of its room.
    pub expected: u64,
    /// 1 − delivered / expected.
    pub loss: f64,
    /// Deliveries per second of the sending window.
    pub delivered_per_s: f64,
    /// Delivery latency, ms.
    pub latency_ms: Percentiles,
    /// Received payloads that did not open, verify or parse.
    pub bad_payloads: u64,
    /// Clients whose connection closed during the run (the server cuts slow receivers off).
    pub disconnected: u64,
    /// This process's CPU seconds over the run.
    pub cpu_s: Option<f64>,
    /// The server's usage, with `--server-pid`.
    pub server: Option<ServerUsage>,
    /// The open-files limit the benchmark ran with.
    pub fd_limit: Option<u64>,
}

impl BenchConfig {
    /// Checks bounds and the loopback rule; returns the URLs to connect to (with
    /// `localhost` made `127.0.0.1` so source addresses can be spread).
    pub fn validate(&self) -> Result<(Vec<String>, bool), BenchError> {
        let invalid = |m: &str| Err(BenchError::Invalid(m.to_owned()));
        if self.clients == 0 || self.clients > MAX_CLIENTS {
            return invalid("--clients must be 1 to 20000");
        }
        if self.rooms == 0 || self.rooms > self.clients {
            return invalid("--rooms must be 1 to --clients");
        }
        if self.senders > self.clients {
            return invalid("--senders must be at most --clients");
        }
        if !(self.rate > 0.0 && self.rate <= MAX_RATE) {
            return invalid("--rate must be above 0 and at most 1000");
        }
        if self.payload > MAX_PAYLOAD {
            return invalid("--payload must be at most 1 MiB");
        }
        if self.duration == 0 || self.duration > MAX_DURATION_SECS {
            return invalid("--duration must be 1 to 600 seconds");
        }
        if self.threads == 0 || self.threads > 64 {
            return invalid("--threads must be 1 to 64");
        }
        if self.connect_concurrency == 0 || self.connect_concurrency > 4096 {
            return invalid("--connect-concurrency must be 1 to 4096");
        }
        if self.connect_timeout == 0 || self.connect_timeout > 600 {
            return invalid("--connect-timeout must be 1 to 600 seconds");
        }
        if self.drain > 60 {
            return invalid("--drain must be at most 60 seconds");
        }
        if self.max_in_flight == 0 || self.max_in_flight > 10_000 {
            return invalid("--max-in-flight must be 1 to 10000");
        }
        let mut urls = Vec::new();
        let mut spread_ok = !self.no_spread;
        for url in self.url.split(',') {
            let (url, spread) = self.check_url(url.trim())?;
            urls.push(url);
            spread_ok &= spread;
        }
        Ok((urls, spread_ok))
    }

    /// One server URL: http, loopback unless `allow_remote`; whether client source
    /// addresses can be spread over 127.0.0.0/8 for it.
    fn check_url(&self, url: &str) -> Result<(String, bool), BenchError> {
        let invalid = |m: &str| Err(BenchError::Invalid(m.to_owned()));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| BenchError::Invalid("--url must be http://host:port".into()))?;
        if scheme != "http" {
            return invalid("--url must be http:// (the benchmark speaks plain WebSocket)");
        }
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = match authority.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => authority,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback =
            host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        if !loopback && !self.allow_remote {
            return Err(BenchError::Remote(host.to_owned()));
        }
        let spread_ok =
            host == "localhost" || host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback());
        let url = if host == "localhost" {
            url.replacen("localhost", "127.0.0.1", 1)
        } else {
            url.to_owned()
        };
        Ok((url.trim_end_matches('/').to_owned(), spread_ok))
    }
}

/// Raises the open-files soft limit to the hard limit; returns the limit in force.
fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

/// Counters shared by every task.
#[derive(Debug, Default)]
struct Stats {
    planned: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    skipped: AtomicU64,
    delivered: AtomicU64,
    expected: AtomicU64,
    bad_payloads: AtomicU64,
    disconnected: AtomicU64,
    refused: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    latency: Histogram,
    connect: Histogram,
}

impl Stats {
    fn refuse(&self, phase: &str, code: &str) {
        if let Ok(mut map) = self.refused.lock() {
            *map.entry(phase.to_owned())
                .or_default()
                .entry(code.to_owned())
                .or_default() += 1;
        }
    }
}

/// What every receiver needs to read payloads.
struct Shared {
    epoch: Instant,
    sealed: bool,
    room_keys: Vec<RoomKeys>,
    room_ids: Vec<RoomId>,
    sender_keys: Vec<PublicKey>,
    stats: Stats,
}

/// A connected, joined client.
struct Joined {
    client: Arc<Client>,
    room: usize,
}

fn micros_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

/// The error code of a connect failure: the server's `rate_limited:` refusal, or the
/// kind of local failure (too many open files shows up here).
fn connect_failure_code(e: &ClientError) -> String {
    match e {
        ClientError::Refused(message) => message
            .split(':')
            .next()
            .unwrap_or("refused")
            .trim()
            .to_owned(),
        ClientError::ConnectTimeout(_) => "timeout".to_owned(),
        ClientError::Io(io) => format!("io_{:?}", io.kind()).to_lowercase(),
        ClientError::WebSocket(_) => "websocket".to_owned(),
        _ => "error".to_owned(),
    }
}

async fn receive(
    mut events: tokio::sync::mpsc::Receiver<ServerEvent>,
    room: usize,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(ServerEvent::Msg(msg)) => {
                    let stamp = if shared.sealed {
                        let Ok(from) = CryptoMemberId::new(msg.from.as_str()) else { continue };
                        payload::read_sealed(&msg.data.0, &shared.room_keys[room], &from, &shared.sender_keys).ok()
                    } else {
                        payload::read_plain(&msg.data.0)
                    };
                    match stamp {
                        Some(Stamp { sent_us, .. }) => {
                            shared.stats.latency.record(micros_since(shared.epoch).saturating_sub(sent_us));
                            shared.stats.delivered.fetch_add(1, Ordering::Relaxed);
                        }
                        None => {
                            shared.stats.bad_payloads.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                Some(ServerEvent::Disconnected) | None => {
                    if !*stop.borrow() {
                        shared.stats.disconnected.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
                Some(_) => {}
            },
            _ = stop.changed() => return,
        }
    }
}

async fn connect_one(
    index: usize,
    url: &str,
    options: ConnectOptions,
    identity: &IdentityKey,
    shared: &Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Option<Joined> {
    let room = index % shared.room_ids.len();
    let started = Instant::now();
    let (client, events) = match Client::connect_with(url, &options).await {
        Ok(c) => c,
        Err(e) => {
            shared.stats.refuse("connect", &connect_failure_code(&e));
            return None;
        }
    };
    // Start reading at once: presence floods must not back up into the server.
    tokio::spawn(receive(events, room, shared.clone(), stop));
    let profile = if shared.sealed {
        let member = CryptoMemberId::new(client.member_id().as_str()).ok()?;
        let body = format!(
            r#"{{"type":"profile","name":"bench-{index}","key":"{}","sent_at":{}}}"#,
            identity.public_key(),
            now_ms()
        );
        let sealed =
            streamchat_crypto::seal(&shared.room_keys[room], &member, identity, body.as_bytes())
                .ok()?;
        streamchat_crypto::encoding::encode(&sealed)
    } else {
        // Unsealed runs measure the relay only; the server never reads profiles.
        "YmVuY2g".to_owned()
    };
    match client.join(&shared.room_ids[room], &profile).await {
        Ok(Ok(_)) => {
            shared
                .stats
                .connect
                .record(started.elapsed().as_micros() as u64);
            Some(Joined {
                client: Arc::new(client),
                room,
            })
        }
        Ok(Err(e)) => {
            shared.stats.refuse("join", e.code.as_str());
            client.close().await;
            None
        }
        Err(e) => {
            shared.stats.refuse("join", &connect_failure_code(&e));
            None
        }
    }
}

/// One sender's loop: a tick every 1/rate seconds until `end`.
#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename these.
async fn send_loop(
    sender: u32,
    joined: &Joined,
    identity: IdentityKey,
    shared: Arc<Shared>,
    first_tick: tokio::time::Instant,
    end: tokio::time::Instant,
    config: &BenchConfig,
    receivers_in_room: u64,
) {
    let period = Duration::from_secs_f64(1.0 / config.rate);
    let ticks =
        (end.saturating_duration_since(first_tick).as_secs_f64() / period.as_secs_f64()).ceil();
    shared
        .stats
        .planned
        .fetch_add(ticks as u64, Ordering::Relaxed);
    let mut ticker = tokio::time::interval_at(first_tick, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let member = CryptoMemberId::new(joined.client.member_id().as_str()).ok();
    let mut seq = 0u32;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = tokio::time::sleep_until(end) => break,
        }
        if tokio::time::Instant::now() >= end {
            break;
        }
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            shared.stats.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let stamp = Stamp {
            sender,
            seq,
            sent_us: micros_since(shared.epoch),
        };
        seq = seq.wrapping_add(1);
        let data = match (&member, shared.sealed) {
            (Some(member), true) => payload::sealed(
                stamp,
                config.payload,
                now_ms(),
                &shared.room_keys[joined.room],
                member,
                &identity,
            ),
            _ => Some(payload::plain(stamp, config.payload)),
        };
        let Some(data) = data else { continue };
        shared.stats.sent.fetch_add(1, Ordering::Relaxed);
        let client = joined.client.clone();
        let room = shared.room_ids[joined.room].clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            match client.msg(&room, Bytes::from(data), None).await {
                Ok(Ok(_)) => {
                    shared.stats.acked.fetch_add(1, Ordering::Relaxed);
                    shared
                        .stats
                        .expected
                        .fetch_add(receivers_in_room, Ordering::Relaxed);
                }
                Ok(Err(e)) => shared.stats.refuse("msg", e.code.as_str()),
                Err(ClientError::AckTimeout(_)) => shared.stats.refuse("msg", "ack_timeout"),
                Err(_) => shared.stats.refuse("msg", "connection_closed"),
            }
            drop(permit);
        });
    }
    // Wait for the acks still out (each is bounded by the client's ack timeout).
    let all = u32::try_from(config.max_in_flight).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(15), in_flight.acquire_many(all)).await;
}

/// Runs the benchmark on its own runtime and returns the report.
pub fn run(config: &BenchConfig) -> Result<BenchReport, BenchError> {
    let (urls, spread) = config.validate()?;
    let fd_limit = raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let secrets: Vec<RoomSecret> = (0..config.rooms)
        .map(|_| RoomSecret::generate())
        .collect::<Result<_, _>>()?;
    let room_keys: Vec<RoomKeys> = secrets.iter().map(RoomSecret::room_keys).collect();
    let room_ids = room_keys.iter().map(protocol_room_id).collect();
    let identities: Vec<IdentityKey> = (0..config.clients)
        .map(|_| IdentityKey::generate())
        .collect::<Result<_, _>>()?;
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        sealed: config.seal,
        room_keys,
        room_ids,
        sender_keys: identities[..config.senders]
            .iter()
            .map(IdentityKey::public_key)
            .collect(),
        stats: Stats::default(),
    });
    let own_cpu_start = Process::Me.cpu_seconds();
    let server_cpu_start = config
        .server_pid
        .and_then(|pid| Process::Pid(pid).cpu_seconds());
    let (stop_tx, stop_rx) = watch::channel(false);

    // Everything runs under one deadline, whatever the server does.
    let hard_limit =
        Duration::from_secs(config.connect_timeout + config.duration + config.drain + 30);
    let outcome = runtime.block_on(async {
        tokio::time::timeout(hard_limit, async {
            // Connect phase.
            let connect_started = Instant::now();
            let gate = Arc::new(Semaphore::new(config.connect_concurrency));
            let mut tasks = Vec::with_capacity(config.clients);
            for (index, identity) in identities.iter().enumerate() {
                let options = ConnectOptions {
                    local_addr: spread.then(|| {
                        IpAddr::V4(Ipv4Addr::new(
                            127,
                            0,
                            0,
                            2 + (index % SOURCE_ADDRESSES as usize) as u8,
                        ))
                    }),
                    ..ConnectOptions::default()
                };
                let (url, identity, shared, stop, gate) = (
                    urls[index % urls.len()].clone(),
                    identity.clone(),
                    shared.clone(),
                    stop_rx.clone(),
                    gate.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let _permit = gate.acquire_owned().await.ok()?;
                    connect_one(index, &url, options, &identity, &shared, stop).await
                }));
            }
            let connect_deadline =
                tokio::time::Instant::now() + Duration::from_secs(config.connect_timeout);
            let mut joined: Vec<Option<Joined>> = Vec::with_capacity(config.clients);
            for task in tasks {
                match tokio::time::timeout_at(connect_deadline, task).await {
                    Ok(Ok(result)) => joined.push(result),
                    Ok(Err(_)) => joined.push(None),
                    Err(_) => {
                        shared.stats.refuse("connect", "connect_phase_timeout");
                        joined.push(None);
                    }
                }
            }
            let connect_s = connect_started.elapsed().as_secs_f64();
            let mut members_per_room = vec![0u64; config.rooms];
            for j in joined.iter().flatten() {
                members_per_room[j.room] += 1;
            }
            // Let the presence news of the last joins settle before measuring.
            tokio::time::sleep(Duration::from_millis(500)).await;

            // Sending window.
            let start = tokio::time::Instant::now() + Duration::from_millis(50);
            let end = start + Duration::from_secs(config.duration);
            let period = Duration::from_secs_f64(1.0 / config.rate);
            let senders_connected = joined[..config.senders].iter().flatten().count();
            let joined = Arc::new(joined);
            let mut sender_tasks = Vec::new();
            for sender in 0..config.senders {
                if joined[sender].is_none() {
                    continue;
                }
                let (joined, shared, config) = (joined.clone(), shared.clone(), config.clone());
                let identity = identities[sender].clone();
                // Stagger the senders over one period so they do not tick together.
                let first = start + period.mul_f64(sender as f64 / config.senders.max(1) as f64);
                let receivers = joined[sender]
                    .as_ref()
                    .map_or(0, |j| members_per_room[j.room].saturating_sub(1));
                sender_tasks.push(tokio::spawn(async move {
                    if let Some(j) = &joined[sender] {
                        send_loop(
                            sender as u32,
                            j,
                            identity,
                            shared,
                            first,
                            end,
                            &config,
                            receivers,
                        )
                        .await;
                    }
                }));
            }
            for task in sender_tasks {
                let _ = task.await;
            }
            let window = (tokio::time::Instant::now().min(end) - start).as_secs_f64();

            // Drain: until everything expected arrived, or the drain time is up.
            let drain_end = tokio::time::Instant::now() + Duration::from_secs(config.drain);
            while tokio::time::Instant::now() < drain_end {
                let s = &shared.stats;
                if s.delivered.load(Ordering::Relaxed) >= s.expected.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = stop_tx.send(true);
            for j in joined.iter().flatten() {
                j.client.disconnect().await;
            }
            (
                connect_s,
                window,
                senders_connected,
                joined.iter().flatten().count(),
            )
        })
        .await
    });
    let (connect_s, window, senders_connected, connected) = match outcome {
        Ok(values) => values,
        Err(_) => {
            shared.stats.refuse("run", "hard_time_limit");
            (0.0, config.duration as f64, 0, 0)
        }
    };
    // Dropping the runtime ends whatever is left (reader and writer tasks).
    runtime.shutdown_timeout(Duration::from_secs(2));

    let stats = &shared.stats;
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let expected = stats.expected.load(Ordering::Relaxed);
    let server = config.server_pid.map(|pid| {
        let process = Process::Pid(pid);
        let memory = process.memory_kib();
        ServerUsage {
            pid,
            cpu_s: process
                .cpu_seconds()
                .zip(server_cpu_start)
                .map(|(end, start)| round3(end - start)),
            rss_kib: memory.map(|m| m.0),
            rss_peak_kib: memory.map(|m| m.1),
        }
    });
    let source_addresses = if spread {
        config.clients.min(SOURCE_ADDRESSES as usize)
    } else {
        1
    };
    Ok(BenchReport {
        url: urls.join(","),
        clients: config.clients,
        connected,
        rooms: config.rooms,
        senders: senders_connected,
        rate: config.rate,
        payload_bytes: config.payload,
        sealed: config.seal,
        threads: config.threads,
        source_addresses,
        connect_s: round3(connect_s),
        connect_ms: Percentiles::of(&stats.connect),
        duration_s: round3(window),
        planned: stats.planned.load(Ordering::Relaxed),
        sent: stats.sent.load(Ordering::Relaxed),
        acked: stats.acked.load(Ordering::Relaxed),
        refused: stats.refused.lock().map(|m| m.clone()).unwrap_or_default(),
        skipped: stats.skipped.load(Ordering::Relaxed),
        delivered,
        expected,
        loss: if expected == 0 {
            0.0
        } else {
            round6(1.0 - delivered.min(expected) as f64 / expected as f64)
        },
        delivered_per_s: if window > 0.0 {
            round3(delivered as f64 / window)
        } else {
            0.0
        },
        latency_ms: Percentiles::of(&stats.latency),
        bad_payloads: stats.bad_payloads.load(Ordering::Relaxed),
        disconnected: stats.disconnected.load(Ordering::Relaxed),
        cpu_s: Process::Me
            .cpu_seconds()
            .zip(own_cpu_start)
            .map(|(end, start)| round3(end - start)),
        server,
        fd_limit,
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(change: impl FnOnce(&mut BenchConfig)) -> BenchConfig {
        let mut config = BenchConfig::default();
        change(&mut config);
        config
    }

    fn at(url: &str) -> BenchConfig {
        config(|c| c.url = url.to_owned())
    }

    #[test]
    fn loopback_only_unless_allowed() {
        assert_eq!(
            BenchConfig::default().validate().unwrap(),
            (vec!["http://127.0.0.1:8000".to_owned()], true)
        );
        assert_eq!(
            at("http://localhost:9000/").validate().unwrap(),
            (vec!["http://127.0.0.1:9000".to_owned()], true)
        );
        assert_eq!(
            at("http://[::1]:9000").validate().unwrap(),
            (vec!["http://[::1]:9000".to_owned()], false)
        );
        assert_eq!(
            at("http://127.0.0.1:9000, http://localhost:9001/")
                .validate()
                .unwrap(),
            (
                vec![
                    "http://127.0.0.1:9000".to_owned(),
                    "http://127.0.0.1:9001".to_owned()
                ],
                true
            )
        );
        assert!(matches!(
            at("http://127.0.0.1:9000,http://example.org:80").validate(),
            Err(BenchError::Remote(_))
        ));
        assert!(matches!(
            at("http://example.org:80").validate(),
            Err(BenchError::Remote(_))
        ));
        assert!(matches!(
            at("http://10.0.0.1:80").validate(),
            Err(BenchError::Remote(_))
        ));
        let allowed = config(|c| {
            c.url = "http://10.0.0.1:80".to_owned();
            c.allow_remote = true;
        });
        assert!(allowed.validate().is_ok());
        assert!(at("https://127.0.0.1").validate().is_err());
    }

    #[test]
    fn bounds() {
        let out_of_bounds = [
            ("clients 0", config(|c| c.clients = 0)),
            ("clients 20001", config(|c| c.clients = 20_001)),
            ("rooms 0", config(|c| c.rooms = 0)),
            (
                "5 clients in 6 rooms",
                config(|c| {
                    c.clients = 5;
                    c.rooms = 6;
                }),
            ),
            (
                "6 senders of 5 clients",
                config(|c| {
                    c.clients = 5;
                    c.rooms = 5;
                    c.senders = 6;
                }),
            ),
            ("rate 0", config(|c| c.rate = 0.0)),
            ("rate 1001", config(|c| c.rate = 1001.0)),
            ("duration 601", config(|c| c.duration = 601)),
            ("threads 0", config(|c| c.threads = 0)),
        ];
        for (what, config) in out_of_bounds {
            assert!(config.validate().is_err(), "{what}");
        }
    }
}
