//! Prometheus metrics: counts only, never content, names or addresses.
//!
//! The registry is a value owned by the server state (no global recorder), so several
//! servers in one process, as in tests, keep separate figures.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use streamchat_protocol::ErrorCode;

/// Label of `streamchat_rejections_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CodeLabel {
    /// The error code answered.
    pub code: &'static str,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Open Socket.IO connections.
    pub connections: Gauge,
    /// Rooms with members on this node.
    pub rooms: Gauge,
    /// Room memberships on this node.
    pub members: Gauge,
    /// `msg` events accepted.
    pub messages_relayed: Counter,
    /// `chunk` events accepted.
    pub chunks_relayed: Counter,
    /// Chunk acks held until the room's receivers caught up.
    pub chunk_acks_held: Counter,
    /// Sealed bytes queued to receivers (messages and chunks).
    pub bytes_relayed: Counter,
    /// Events queued to receivers.
    pub deliveries: Counter,
    /// Requests refused, by error code.
    pub rejections: Family<CodeLabel, Counter>,
    /// Receivers cut off because their send queue was full.
    pub slow_receiver_disconnects: Counter,
    /// Sessions resumed.
    pub resumes: Counter,
    /// Resumes refused (unknown or expired session, future position).
    pub resumes_refused: Counter,
    /// Events replayed to resumed sessions.
    pub replayed_events: Counter,
    /// Gaps reported: joins and resumes that could not get everything back.
    pub gaps: Counter,
    /// Resent messages and chunks recognised and not relayed again.
    pub duplicates_dropped: Counter,
    /// Bytes held in replay windows (sampled on scrape).
    pub window_bytes: Gauge,
    /// Engine.IO sessions open, counted from their handshake.
    pub sessions: Gauge,
    /// Engine.IO handshakes refused (an address or the server at its cap, or too fast).
    pub sessions_refused: Counter,
    /// TCP connections closed at accept: their address held its maximum.
    pub tcp_refused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("streamchat");
        let m = Self {
            connections: Gauge::default(),
            rooms: Gauge::default(),
            members: Gauge::default(),
            messages_relayed: Counter::default(),
            chunks_relayed: Counter::default(),
            chunk_acks_held: Counter::default(),
            bytes_relayed: Counter::default(),
            deliveries: Counter::default(),
            rejections: Family::default(),
            slow_receiver_disconnects: Counter::default(),
            resumes: Counter::default(),
            resumes_refused: Counter::default(),
            replayed_events: Counter::default(),
            gaps: Counter::default(),
            duplicates_dropped: Counter::default(),
            window_bytes: Gauge::default(),
            sessions: Gauge::default(),
            sessions_refused: Counter::default(),
            tcp_refused: Counter::default(),
            registry: Registry::default(),
        };
        registry.register(
            "connections",
            "Open Socket.IO connections",
            m.connections.clone(),
        );
        registry.register("rooms", "Rooms with members on this node", m.rooms.clone());
        registry.register("resumes", "Sessions resumed", m.resumes.clone());
        registry.register(
            "resumes_refused",
            "Resumes refused (unknown or expired session, future position)",
            m.resumes_refused.clone(),
        );
        registry.register(
            "replayed_events",
            "Events replayed to resumed sessions",
            m.replayed_events.clone(),
        );
        registry.register(
            "gaps",
            "Joins and resumes told that events could not be recovered",
            m.gaps.clone(),
        );
        registry.register(
            "duplicates_dropped",
            "Resent messages and chunks recognised and not relayed again",
            m.duplicates_dropped.clone(),
        );
        registry.register(
            "sessions",
            "Engine.IO sessions open, counted from their handshake",
            m.sessions.clone(),
        );
        registry.register(
            "sessions_refused",
            "Engine.IO handshakes refused: an address or the server at its cap, or too fast",
            m.sessions_refused.clone(),
        );
        registry.register(
            "tcp_refused",
            "TCP connections closed at accept: their address held its maximum",
            m.tcp_refused.clone(),
        );
        registry.register(
            "window_bytes",
            "Bytes held in the replay windows of this node's rooms",
            m.window_bytes.clone(),
        );
        registry.register(
            "members",
            "Room memberships on this node",
            m.members.clone(),
        );
        registry.register(
            "messages_relayed",
            "msg events accepted",
            m.messages_relayed.clone(),
        );
        registry.register(
            "chunks_relayed",
            "chunk events accepted",
            m.chunks_relayed.clone(),
        );
        registry.register(
            "chunk_acks_held",
            "Chunk acks held until the room's receivers caught up",
            m.chunk_acks_held.clone(),
        );
        registry.register(
            "bytes_relayed",
            "Sealed bytes queued to receivers",
            m.bytes_relayed.clone(),
        );
        registry.register(
            "deliveries",
            "Events queued to receivers",
            m.deliveries.clone(),
        );
        registry.register(
            "rejections",
            "Requests refused, by error code",
            m.rejections.clone(),
        );
        registry.register(
            "slow_receiver_disconnects",
            "Receivers cut off because their send queue was full",
            m.slow_receiver_disconnects.clone(),
        );
        // Every code appears from the start, so a scrape shows zeros rather than gaps.
        for code in ErrorCode::ALL {
            let _created = m.rejections.get_or_create(&CodeLabel {
                code: code.as_str(),
            });
        }
        Self { registry, ..m }
    }

    /// Counts one refused request.
    pub fn reject(&self, code: ErrorCode) {
        self.rejections
            .get_or_create(&CodeLabel {
                code: code.as_str(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_metric_and_code() {
        let m = Metrics::new();
        m.reject(ErrorCode::RoomFull);
        m.messages_relayed.inc();
        let text = m.render();
        for name in [
            "streamchat_connections ",
            "streamchat_rooms ",
            "streamchat_members ",
            "streamchat_messages_relayed_total 1",
            "streamchat_chunks_relayed_total 0",
            "streamchat_bytes_relayed_total ",
            "streamchat_slow_receiver_disconnects_total 0",
            "streamchat_rejections_total{code=\"room_full\"} 1",
            "streamchat_rejections_total{code=\"bad_request\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
