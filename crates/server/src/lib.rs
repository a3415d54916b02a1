//! The StreamChat server: a router of sealed bytes over Socket.IO.
//!
//! `run` takes a bound listener, a validated configuration and a shutdown future, so
//! tests start the real server on `127.0.0.1:0` and the binary stays thin. The server
//! never holds a key and never parses message content (ARCHITECTURE.md): it checks
//! membership, sizes and rates, and relays.

mod accept;
mod assets;
mod bus;
mod cluster;
mod config;
mod connection;
mod error;
mod http;
#[cfg(feature = "kafka")]
mod kafka;
mod limits;
mod log;
mod metrics;
#[cfg(feature = "redis")]
mod redis;
mod relay;
mod sessions;
mod socket;
mod state;

pub use cluster::{BusEvent, Cluster, Inbound, Inbox, RoomEvent, SingleNode};
pub use config::{ConfigError, ServeConfig};
pub use http::CONTENT_SECURITY_POLICY;
pub use state::AppState;

/// The server's pure decoders of bytes from clients and from other nodes, for the fuzz
/// targets in `fuzz/` (docs/security.md, "Fuzzing"). Not an API: nothing else uses it.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::cluster::Placed;
    pub use crate::http::compact_socket_io_request;
    #[cfg(feature = "redis")]
    pub use crate::redis::{LogReply, StoredMember, decode_log_entry, decode_log_reply};
    pub use crate::sessions::{Proxies, client_ip};
}

use socketioxide::{ParserConfig, SocketIo};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use streamchat_protocol::{Notice, Pos, RoomId, events, notice_codes};
use tokio::net::TcpListener;

/// How long graceful shutdown waits for the shutdown notice to reach clients before
/// closing their connections.
const NOTICE_GRACE: Duration = Duration::from_millis(250);

/// Serves StreamChat on `listener` until `shutdown` resolves, then shuts down gracefully:
/// a `notice` to every client, `leave` with reason `server_restart`, connections closed.
/// The caller bounds the total time (the binary gives it 5 s).
pub async fn run(
    listener: TcpListener,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    Server::prepare(config)
        .await?
        .serve(listener, shutdown)
        .await
}

/// How long startup waits for Redis and Kafka before giving up.
const DEPENDENCY_TIMEOUT: Duration = Duration::from_secs(15);

/// A server whose certificate is loaded and whose dependencies are connected: ready to
/// serve. Preparing first lets the binary report a bad certificate or an unreachable
/// Redis before it says it is listening.
pub struct Server {
    config: ServeConfig,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    cluster: Arc<dyn Cluster>,
    inbound: tokio::sync::mpsc::Receiver<Inbound>,
    inbox: Inbox,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("backend", &self.cluster.backend())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Loads the TLS certificate and connects to Redis and Kafka when configured.
    pub async fn prepare(config: ServeConfig) -> std::io::Result<Self> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(|e| {
                        std::io::Error::new(e.kind(), format!("TLS certificate or key: {e}"))
                    })?,
            ),
            _ => None,
        };
        let (inbox, inbound) = Inbox::new(INBOUND_QUEUE);
        let connect = Self::connect_cluster(&config, inbox.clone());
        let cluster = tokio::time::timeout(DEPENDENCY_TIMEOUT, connect)
            .await
            .map_err(|_| {
                std::io::Error::other(format!(
                    "Redis/Kafka did not answer within {DEPENDENCY_TIMEOUT:?}"
                ))
            })??;
        Ok(Self {
            config,
            tls,
            cluster,
            inbound,
            inbox,
        })
    }

    async fn connect_cluster(
        config: &ServeConfig,
        inbound_tx: Inbox,
    ) -> std::io::Result<Arc<dyn Cluster>> {
        let Some(url) = config.redis_url() else {
            return Ok(Arc::new(SingleNode));
        };
        Self::connect_redis(config, &url, inbound_tx).await
    }

    #[cfg(feature = "redis")]
    async fn connect_redis(
        config: &ServeConfig,
        url: &str,
        inbound_tx: Inbox,
    ) -> std::io::Result<Arc<dyn Cluster>> {
        let node = node_id();
        let bus: Arc<dyn bus::Bus> = match config.kafka_brokers() {
            Some(brokers) => {
                Self::connect_kafka(config, &brokers, &node, inbound_tx.clone()).await?
            }
            None => redis::RedisBus::connect(url, inbound_tx.clone())
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?,
        };
        let bounds = redis::LogBounds {
            window_ms: config.resume_window_secs * 1000,
            bytes: config.resume_window_bytes,
            grace_ms: config.resume_grace_secs * 1000,
        };
        let cluster = redis::RedisCluster::connect(url, node, inbound_tx, bus, bounds)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(cluster)
    }

    #[cfg(not(feature = "redis"))]
    async fn connect_redis(
        _: &ServeConfig,
        _: &str,
        _: Inbox,
    ) -> std::io::Result<Arc<dyn Cluster>> {
        Err(std::io::Error::other(
            "this build has no Redis support (cargo feature `redis` of streamchat-server)",
        ))
    }

    #[cfg(all(feature = "redis", feature = "kafka"))]
    async fn connect_kafka(
        config: &ServeConfig,
        brokers: &str,
        node: &str,
        inbound_tx: Inbox,
    ) -> std::io::Result<Arc<dyn bus::Bus>> {
        let largest = config.max_message_bytes.max(config.max_chunk_bytes);
        let bus = kafka::KafkaBus::connect(
            brokers,
            &config.kafka_topic(),
            config.kafka_partitions,
            node.to_owned(),
            largest,
            inbound_tx,
        )
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(bus)
    }

    #[cfg(all(feature = "redis", not(feature = "kafka")))]
    async fn connect_kafka(
        _: &ServeConfig,
        _: &str,
        _: &str,
        _: Inbox,
    ) -> std::io::Result<Arc<dyn bus::Bus>> {
        Err(std::io::Error::other(
            "this build has no Kafka support (cargo feature `kafka` of streamchat-server)",
        ))
    }

    /// Serves on `listener` until `shutdown` resolves, then shuts down gracefully.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            config,
            tls,
            cluster,
            inbound: inbound_rx,
            inbox,
        } = self;
        let state = AppState::new(config, cluster);
        let first_request_secs = state.config.connect_timeout_secs;
        let guard = accept::AddressGuard::new(
            accept::tcp_per_ip(state.config.max_connections_per_ip),
            state.sessions.trusted().cloned(),
            state.metrics.tcp_refused.clone(),
        );
        let (app, io) = app(state.clone());
        tokio::spawn(apply_inbound(state.clone(), io.clone(), inbound_rx));
        if state.cluster.logged() {
            tokio::spawn(fill_gaps(state.clone(), inbox));
        }
        let drain = async move {
            shutdown.await;
            tracing::info!("shutting down");
            state.begin_shutdown();
            let notice = Notice {
                code: notice_codes::SHUTTING_DOWN.into(),
                message: "the server is restarting; reconnect in a moment".into(),
            };
            if let Err(e) = io.emit(events::NOTICE, &notice).await {
                tracing::debug!(error = %e, "shutdown notice not queued for every client");
            }
            // Nobody is announced as leaving: members are not leaving, the server is.
            // They come back (resume, or join again) on the next server. With a cluster
            // log, the others see them reconnecting, and another node takes them over.
            if state.cluster.logged() {
                socket::away_all(&state).await;
            }
            state.cluster.shutdown().await;
            tokio::time::sleep(NOTICE_GRACE).await;
            io.close().await;
        };
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        let handle = axum_server::Handle::new();
        let on_drained = handle.clone();
        tokio::spawn(async move {
            drain.await;
            on_drained.graceful_shutdown(Some(Duration::from_secs(1)));
        });
        // A connection must send its first request, and every request its headers,
        // within the connect timeout; one address holds a bounded number of TCP
        // connections (accept.rs).
        let first_request = Duration::from_secs(first_request_secs);
        let acceptor = accept::Acceptor(guard);
        match tls {
            None => {
                let server = axum_server::from_tcp(listener.into_std()?)?.acceptor(acceptor);
                bounded(server, handle, first_request).serve(service).await
            }
            Some(tls) => {
                let server = axum_server::from_tcp_rustls(listener.into_std()?, tls)?
                    .map(|tls| tls.acceptor(acceptor));
                bounded(server, handle, first_request).serve(service).await
            }
        }
    }
}

/// A server that shuts down through `handle`, and closes a connection that does not send
/// its first request, or a request its headers, within `first_request`.
fn bounded<A: axum_server::Address, Acc>(
    server: axum_server::Server<A, Acc>,
    handle: axum_server::Handle<A>,
    first_request: Duration,
) -> axum_server::Server<A, Acc> {
    let mut server = server.handle(handle).first_request_timeout(first_request);
    server
        .http_builder()
        .http1()
        .header_read_timeout(first_request);
    server
}

/// Items from other nodes waiting to be delivered here, before the bus counts drops.
const INBOUND_QUEUE: usize = 8192;

/// A node id for the bus: unique enough among the nodes of one deployment (process id
/// and start time), and meaningless outside it.
#[cfg(feature = "redis")]
fn node_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// With a cluster log: a room whose next event has not come for a moment (a bus
/// message lost, or a node that died between placing and publishing) gets it read back
/// from the log; what the log no longer has is skipped and counted as a gap.
///
/// A gap shows only when a later event comes: when the inbox says events may have been
/// missed, the tail of every room held here is read back too (an event lost at a room's
/// end, a leave say, has nothing after it).
async fn fill_gaps(state: AppState, inbox: Inbox) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    // One pass over every room's tail a second at most: marks come in bursts when the
    // node is overloaded (a full queue), and each pass reads every room held here.
    let mut last_pass: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        if last_pass.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) && inbox.take_missed() {
            last_pass = Some(tokio::time::Instant::now());
            if !read_tails(&state).await {
                inbox.mark_missed(); // the store did not answer: again on a later pass
            }
        }
        for (room, after, before) in state.rooms.gaps(Duration::from_millis(150)) {
            read_back(&state, &room, after, Some(before)).await;
        }
    }
}

/// Reads back every held room's events after the last one delivered here; false if the
/// store did not answer for some room.
async fn read_tails(state: &AppState) -> bool {
    let mut answered = true;
    for (room, last) in state.rooms.tails() {
        answered &= read_back(state, &room, last, None).await;
    }
    answered
}

/// Delivers `room`'s logged events with `after < pos < before` (`None`: to the end of
/// the log); positions the log no longer has are skipped and counted. False if the
/// store did not answer.
async fn read_back(state: &AppState, room: &RoomId, after: Pos, before: Option<Pos>) -> bool {
    let Ok(fetched) = state
        .cluster
        .fetch(room, after, before.unwrap_or(Pos::MAX))
        .await
    else {
        return false;
    };
    let Some(before) = before.or_else(|| fetched.events.last().map(|e| e.event.pos() + 1)) else {
        return true; // nothing after `after`
    };
    let (applied, skipped) = state
        .rooms
        .fill(room, fetched, before, state.cluster.node_id());
    if skipped > 0 {
        tracing::warn!(skipped, "room log positions lost before this node got them");
        state.metrics.gaps.inc();
    }
    socket::after_apply(state, room, applied);
    true
}

/// Delivers what other nodes send to this node's members, through the same registry as
/// local traffic (room order, slow-receiver rule, metrics).
async fn apply_inbound(
    state: AppState,
    io: SocketIo,
    mut inbound: tokio::sync::mpsc::Receiver<Inbound>,
) {
    while let Some(item) = inbound.recv().await {
        match item {
            Inbound::Event(bus) => {
                let room = bus.room.clone();
                let applied = state.rooms.apply(bus, state.cluster.node_id());
                socket::after_apply(&state, &room, applied);
            }
            Inbound::Dependency { name, up } => {
                let notice = if up {
                    Notice {
                        code: "restored".into(),
                        message: format!("{name} is back: messages reach every node again"),
                    }
                } else {
                    Notice {
                        code: streamchat_protocol::ErrorCode::Unavailable.as_str().into(),
                        message: format!("{name} is unreachable: messages wait until it is back"),
                    }
                };
                let _ = io.emit(events::NOTICE, &notice).await;
            }
        }
    }
}

/// The whole application: Socket.IO on `/socket.io/` and plain HTTP beside it.
pub fn app(state: AppState) -> (axum::Router, SocketIo) {
    let c = &state.config;
    // Room for the JSON header beside the largest binary attachment.
    let largest_packet = c.max_message_bytes.max(c.max_chunk_bytes) + 64 * 1024;
    let (layer, io) = SocketIo::builder()
        .max_buffer_size(c.send_buffer_packets)
        .session_gate(state.sessions.clone())
        .queued_bytes(
            c.max_queued_bytes_per_connection,
            socketioxide::QueueBudget::new(c.max_queued_bytes),
        )
        .connect_timeout(Duration::from_secs(c.connect_timeout_secs))
        .ping_interval(Duration::from_secs(c.ping_interval_secs))
        .ping_timeout(Duration::from_secs(c.ping_timeout_secs))
        .max_payload(largest_packet as u64)
        .ws_max_message_size(largest_packet)
        .ws_max_frame_size(largest_packet)
        .with_parser(ParserConfig::common().max_incoming_binary_buf_size(largest_packet))
        .with_state(state.clone())
        .build_layer();
    socket::register(&io);
    (
        http::with_security_headers(http::router(state).layer(layer).layer(
            axum::middleware::map_request(http::compact_socket_io_request),
        )),
        io,
    )
}
