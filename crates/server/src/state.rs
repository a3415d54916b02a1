//! The server's shared state: a cheap cloneable handle passed to every handler.

use crate::ServeConfig;
use crate::cluster::Cluster;
use crate::metrics::Metrics;
use crate::relay::RoomRegistry;
use crate::sessions::{SessionLimits, Sessions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use streamchat_protocol::Limits;

/// Handle to everything a handler needs. Cloning it is one atomic increment.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// What the handle points to.
#[derive(Debug)]
pub struct Inner {
    /// The validated configuration.
    pub config: ServeConfig,
    /// The limits announced to clients (derived from `config`).
    pub limits: Limits,
    /// This node's sockets per room, for delivery.
    pub rooms: RoomRegistry,
    /// The other nodes (none for a single node).
    pub cluster: Arc<dyn Cluster>,
    /// Engine.IO sessions per address and in all, counted from their handshake.
    pub sessions: Arc<Sessions>,
    /// Counters and gauges for `/metrics`.
    pub metrics: Metrics,
    /// Set when graceful shutdown begins: new connections are refused and departures
    /// are announced as `server_restart`.
    shutting_down: AtomicBool,
}

impl AppState {
    /// State for a server with this configuration and presence store.
    pub fn new(config: ServeConfig, cluster: Arc<dyn Cluster>) -> Self {
        let limits = config.limits();
        let bounds = crate::log::Bounds {
            age: std::time::Duration::from_secs(config.resume_window_secs),
            bytes: config.resume_window_bytes,
            total: crate::log::Budget::new(config.resume_window_total_bytes),
        };
        let metrics = Metrics::new();
        let sessions = Arc::new(Sessions::new(
            SessionLimits {
                per_ip: config.max_connections_per_ip,
                total: config.max_sessions,
                handshakes_per_second: config.handshakes_per_ip_per_second,
                handshake_burst: config.max_connections_per_ip.max(16),
                trusted: config
                    .trust_forwarded_for
                    .then(|| crate::sessions::Proxies::parse(&config.trusted_proxies).ok())
                    .flatten(),
            },
            metrics.sessions.clone(),
            metrics.sessions_refused.clone(),
        ));
        Self(Arc::new(Inner {
            config,
            limits,
            rooms: RoomRegistry::new(bounds),
            cluster,
            sessions,
            metrics,
            shutting_down: AtomicBool::new(false),
        }))
    }

    /// Marks the start of graceful shutdown.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    /// True once graceful shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
