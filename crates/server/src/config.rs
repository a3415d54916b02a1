//! Server configuration: one typed struct, read once from flags, environment and an
//! optional `.env` file (in that order of precedence), validated, then passed down.
//!
//! The original StreamChat's `HOST` and `PORT` keep working; everything else is
//! `STREAMCHAT_*`. Every field documents its default, and `streamchat serve --help`
//! prints them.

use clap::Args;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use streamchat_protocol::Limits;

/// Configuration of `streamchat serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on. 127.0.0.1 keeps the server private to this machine; use
    /// 0.0.0.0 (with TLS) to serve a network.
    #[arg(long, env = "HOST", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,

    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// Largest sealed message (`msg` data), in bytes.
    #[arg(long, env = "STREAMCHAT_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_message_bytes: usize,

    /// Largest file chunk (`chunk` data), in bytes.
    #[arg(long, env = "STREAMCHAT_MAX_CHUNK_BYTES", default_value_t = 1024 * 1024)]
    pub max_chunk_bytes: usize,

    /// Chunks per file (`seq` must be below this). The largest file is this many chunks
    /// of at most --max-chunk-bytes: 256 MiB with the defaults.
    #[arg(long, env = "STREAMCHAT_MAX_FILE_CHUNKS", default_value_t = 256)]
    pub max_file_chunks: u32,

    /// Largest sealed profile handed over on `join`, in base64url characters.
    #[arg(long, env = "STREAMCHAT_MAX_PROFILE_BYTES", default_value_t = 4096)]
    pub max_profile_bytes: usize,

    /// Sustained `msg` events per second per connection (token bucket refill rate).
    #[arg(long, env = "STREAMCHAT_MESSAGES_PER_SECOND", default_value_t = 20)]
    pub messages_per_second: u32,

    /// `msg` events a connection may send in a burst (token bucket size).
    #[arg(long, env = "STREAMCHAT_MESSAGE_BURST", default_value_t = 40)]
    pub message_burst: u32,

    /// Sustained bytes per second per connection, messages and chunks together.
    #[arg(long, env = "STREAMCHAT_BYTES_PER_SECOND", default_value_t = 16 * 1024 * 1024)]
    pub bytes_per_second: u64,

    /// Bytes a connection may send in a burst; at least the largest message and chunk.
    #[arg(long, env = "STREAMCHAT_BYTE_BURST", default_value_t = 16 * 1024 * 1024)]
    pub byte_burst: u64,

    /// Members a room may hold.
    #[arg(long, env = "STREAMCHAT_MAX_MEMBERS_PER_ROOM", default_value_t = 1000)]
    pub max_members_per_room: usize,

    /// Rooms one connection may be in at once.
    #[arg(
        long,
        env = "STREAMCHAT_MAX_ROOMS_PER_CONNECTION",
        default_value_t = 16
    )]
    pub max_rooms_per_connection: usize,

    /// Concurrent connections from one IP address, counted from the first request of
    /// each Engine.IO session (connected to the chat or not).
    #[arg(long, env = "STREAMCHAT_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: u32,

    /// Concurrent connections in all (Engine.IO sessions, from their first request);
    /// past it new ones get HTTP 503 with Retry-After.
    #[arg(long, env = "STREAMCHAT_MAX_SESSIONS", default_value_t = 100_000)]
    pub max_sessions: usize,

    /// New connections one IP address may open per second (sustained; it may open up to
    /// --max-connections-per-ip at once).
    #[arg(
        long,
        env = "STREAMCHAT_HANDSHAKES_PER_IP_PER_SECOND",
        default_value_t = 50
    )]
    pub handshakes_per_ip_per_second: u32,

    /// Seconds a new connection has to join the chat's namespace (send its Socket.IO
    /// CONNECT) before it is closed.
    #[arg(long, env = "STREAMCHAT_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    pub connect_timeout_secs: u64,

    /// Packets queued for one connection before it counts as too slow and is cut off
    /// (announced to its rooms as `leave` with reason `timeout`).
    #[arg(long, env = "STREAMCHAT_SEND_BUFFER_PACKETS", default_value_t = 256)]
    pub send_buffer_packets: usize,

    /// Bytes of messages and chunks queued for one connection before it counts as too
    /// slow and is cut off (beside --send-buffer-packets): a receiver that stops reading
    /// while 1 MiB chunks flow holds at most this much.
    #[arg(long, env = "STREAMCHAT_MAX_QUEUED_BYTES_PER_CONNECTION", default_value_t = 16 * 1024 * 1024)]
    pub max_queued_bytes_per_connection: usize,

    /// Bytes queued for all connections together; past it, a connection that already has
    /// something queued is cut off as too slow rather than queue more.
    #[arg(long, env = "STREAMCHAT_MAX_QUEUED_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub max_queued_bytes: usize,

    /// Seconds a member whose connection dropped stays a member ("reconnecting"), so it
    /// can resume with nothing lost and nobody told it left. 0: it leaves at once.
    #[arg(long, env = "STREAMCHAT_RESUME_GRACE_SECS", default_value_t = 20)]
    pub resume_grace_secs: u64,

    /// Seconds a room's events are kept in memory for members who resume.
    #[arg(long, env = "STREAMCHAT_RESUME_WINDOW_SECS", default_value_t = 120)]
    pub resume_window_secs: u64,

    /// Bytes of a room's events kept in memory for members who resume (the oldest go first).
    #[arg(long, env = "STREAMCHAT_RESUME_WINDOW_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub resume_window_bytes: usize,

    /// Bytes of all rooms' replay windows together on this node. Over it, a room that
    /// adds an event drops its own oldest first (the rooms that send the most pay).
    #[arg(long, env = "STREAMCHAT_RESUME_WINDOW_TOTAL_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub resume_window_total_bytes: usize,

    /// Seconds to wait for a pong before a connection counts as gone.
    #[arg(long, env = "STREAMCHAT_PING_TIMEOUT_SECS", default_value_t = 20)]
    pub ping_timeout_secs: u64,

    /// Seconds between pings.
    #[arg(long, env = "STREAMCHAT_PING_INTERVAL_SECS", default_value_t = 25)]
    pub ping_interval_secs: u64,

    /// Take the client's address from the last `X-Forwarded-For` entry (for the
    /// per-address limits), but only on connections from a trusted proxy
    /// (--trusted-proxies; by default this machine: 127.0.0.0/8 and ::1). Only behind a
    /// proxy that overwrites that header.
    #[arg(long, env = "STREAMCHAT_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,

    /// The proxies whose `X-Forwarded-For` is believed with --trust-forwarded-for:
    /// addresses or networks, comma-separated (`10.0.0.5,192.168.0.0/16,::1`). From any
    /// other peer the header is ignored.
    #[arg(
        long,
        env = "STREAMCHAT_TRUSTED_PROXIES",
        default_value = "127.0.0.0/8,::1"
    )]
    pub trusted_proxies: String,

    /// Include client IP addresses in logs (off: logs carry no address).
    #[arg(long, env = "STREAMCHAT_LOG_IPS", default_value_t = false)]
    pub log_ips: bool,

    /// TLS certificate chain (PEM). With --tls-key, serves HTTPS and WSS, so browsers
    /// on other machines get the secure context WebCrypto needs.
    #[arg(long, env = "STREAMCHAT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM) for --tls-cert.
    #[arg(long, env = "STREAMCHAT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Redis URL (`redis://[:password@]host:port[/db]`): shares rooms and presence with
    /// other nodes. Without it (and without REDIS_HOST), the node runs alone, in memory.
    #[arg(long, env = "STREAMCHAT_REDIS_URL")]
    pub redis_url: Option<String>,

    /// The original StreamChat's Redis host; used when --redis-url is not given.
    #[arg(long, env = "REDIS_HOST", hide_env_values = true)]
    pub redis_host: Option<String>,

    /// The original StreamChat's Redis port (with REDIS_HOST).
    #[arg(long, env = "REDIS_PORT", default_value_t = 6379)]
    pub redis_port: u16,

    /// The original StreamChat's Redis password (with REDIS_HOST).
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,

    /// Kafka bootstrap servers (`host:port,…`): carries room events between nodes
    /// (presence stays in Redis, which is then required).
    #[arg(long, env = "STREAMCHAT_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,

    /// The original StreamChat's name for --kafka-brokers.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS", hide = true)]
    pub kafka_bootstrap_servers: Option<String>,

    /// Kafka topic for room events [default: streamchat-rooms].
    #[arg(long, env = "STREAMCHAT_KAFKA_TOPIC")]
    pub kafka_topic: Option<String>,

    /// Partitions of the Kafka topic when this node creates it (a topic that exists keeps
    /// its own). Events are keyed by room, so a room's order holds whatever the count.
    #[arg(long, env = "STREAMCHAT_KAFKA_PARTITIONS", default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub kafka_partitions: i32,

    /// The original StreamChat's name for --kafka-topic.
    #[arg(long = "kafka-topic-legacy", env = "KAFKA_TOPIC", hide = true)]
    pub kafka_topic_legacy: Option<String>,

    /// Deprecated: the original StreamChat's server-held Fernet key. Ignored with a
    /// warning: keys now live only in clients.
    #[arg(long, env = "ENCRYPTION_KEY", hide = true)]
    pub encryption_key: Option<String>,
}

/// A configuration that cannot work, with a one-line reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServeConfig {
    /// The address to bind.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    /// Checks the values against each other; the error is one line for people.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if let Err(bad) = crate::sessions::Proxies::parse(&self.trusted_proxies) {
            return invalid(format!(
                "--trusted-proxies: {bad:?} is not an address or network (a.b.c.d, a.b.c.d/n, or IPv6)"
            ));
        }
        let positive = [
            ("--max-message-bytes", self.max_message_bytes as u64),
            ("--max-chunk-bytes", self.max_chunk_bytes as u64),
            ("--max-file-chunks", u64::from(self.max_file_chunks)),
            ("--max-profile-bytes", self.max_profile_bytes as u64),
            ("--messages-per-second", u64::from(self.messages_per_second)),
            ("--message-burst", u64::from(self.message_burst)),
            ("--bytes-per-second", self.bytes_per_second),
            ("--max-members-per-room", self.max_members_per_room as u64),
            (
                "--max-rooms-per-connection",
                self.max_rooms_per_connection as u64,
            ),
            (
                "--max-connections-per-ip",
                u64::from(self.max_connections_per_ip),
            ),
            ("--max-sessions", self.max_sessions as u64),
            (
                "--handshakes-per-ip-per-second",
                u64::from(self.handshakes_per_ip_per_second),
            ),
            ("--connect-timeout-secs", self.connect_timeout_secs),
            ("--send-buffer-packets", self.send_buffer_packets as u64),
            (
                "--max-queued-bytes-per-connection",
                self.max_queued_bytes_per_connection as u64,
            ),
            ("--max-queued-bytes", self.max_queued_bytes as u64),
            ("--ping-interval-secs", self.ping_interval_secs),
            ("--ping-timeout-secs", self.ping_timeout_secs),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return invalid(format!("{name} must be at least 1"));
        }
        let largest = self.max_message_bytes.max(self.max_chunk_bytes) as u64;
        if self.byte_burst < largest {
            return invalid(format!(
                "--byte-burst ({}) must be at least the largest message or chunk ({largest})",
                self.byte_burst
            ));
        }
        // socketioxide refuses a packet whose attachments exceed its binary buffer; the
        // chunk limit must stay well inside websocket frame limits too.
        if self.max_chunk_bytes > 16 * 1024 * 1024 || self.max_message_bytes > 16 * 1024 * 1024 {
            return invalid(
                "--max-chunk-bytes and --max-message-bytes must be at most 16 MiB".into(),
            );
        }
        if self.kafka_brokers().is_some() && self.redis_url().is_none() {
            return invalid(
                "Kafka carries room events but presence needs Redis: also set --redis-url".into(),
            );
        }
        if self.max_profile_bytes > 64 * 1024 {
            return invalid("--max-profile-bytes must be at most 65536".into());
        }
        Ok(())
    }

    /// The Redis URL to use, from --redis-url or the original REDIS_HOST/PORT/PASSWORD.
    pub fn redis_url(&self) -> Option<String> {
        if let Some(url) = &self.redis_url {
            return Some(url.clone());
        }
        let host = self.redis_host.as_ref().filter(|h| !h.is_empty())?;
        Some(
            match self.redis_password.as_ref().filter(|p| !p.is_empty()) {
                Some(password) => format!("redis://:{password}@{host}:{}", self.redis_port),
                None => format!("redis://{host}:{}", self.redis_port),
            },
        )
    }

    /// Kafka brokers, from --kafka-brokers or the original KAFKA_BOOTSTRAP_SERVERS.
    pub fn kafka_brokers(&self) -> Option<String> {
        self.kafka_brokers
            .clone()
            .or_else(|| self.kafka_bootstrap_servers.clone())
            .filter(|b| !b.is_empty())
    }

    /// Kafka topic, from --kafka-topic, the original KAFKA_TOPIC, or `streamchat-rooms`.
    pub fn kafka_topic(&self) -> String {
        self.kafka_topic
            .clone()
            .or_else(|| self.kafka_topic_legacy.clone())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "streamchat-rooms".to_owned())
    }

    /// `https` with TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The limits clients are told in the join ack.
    pub fn limits(&self) -> Limits {
        Limits {
            max_message_bytes: self.max_message_bytes,
            max_chunk_bytes: self.max_chunk_bytes,
            max_file_chunks: self.max_file_chunks,
            max_file_bytes: u64::from(self.max_file_chunks) * self.max_chunk_bytes as u64,
            max_members_per_room: self.max_members_per_room,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    fn parse(args: &[&str]) -> ServeConfig {
        Cli::try_parse_from(std::iter::once("streamchat").chain(args.iter().copied()))
            .unwrap()
            .serve
    }

    #[test]
    fn defaults_are_valid() {
        let c = parse(&[]);
        c.validate().unwrap();
        assert_eq!(c.port, 8000);
        assert_eq!(c.max_message_bytes, 65536);
        assert_eq!(c.max_chunk_bytes, 1 << 20);
    }

    #[test]
    fn zero_limits_and_small_bursts_are_refused_with_the_flag_name() {
        let e = parse(&["--max-members-per-room", "0"])
            .validate()
            .unwrap_err();
        assert!(e.to_string().contains("--max-members-per-room"));
        let e = parse(&["--byte-burst", "10"]).validate().unwrap_err();
        assert!(e.to_string().contains("--byte-burst"));
    }
}
