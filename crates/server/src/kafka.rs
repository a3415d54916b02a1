//! Kafka: the bus that carries room events between nodes when Kafka is configured
//! (presence stays in Redis).
//!
//! One topic holds every room's events, keyed by room so each room keeps its order in
//! one partition. Every node reads every partition from the end (no shared consumer
//! group: `assign`, never `subscribe`; librdkafka still wants a `group.id`, so each node
//! has its own and never commits). Retention is short and segments small, since Kafka
//! deletes whole segments: events are ciphertext and only useful for seconds. Message
//! size settings are explicit so file chunks fit, whatever the broker's defaults.
//!
//! Publishing never waits: records go to librdkafka's bounded queue and delivery reports
//! count failures. A health loop probes the broker with a short-lived client; when the
//! broker is lost, the producer and consumer are dropped, and when it is back, the topic
//! is re-created if needed (a broker with in-memory storage loses its topics on restart)
//! and fresh clients read it from the end. Long-lived librdkafka 2.12 clients crashed
//! (SIGSEGV in the metadata cache) when such a broker came back without their topic;
//! fresh clients do not carry that stale cache.

use crate::bus::Bus;
use crate::cluster::{ClusterFuture, Inbound, Inbox, Unavailable};
use parking_lot::Mutex;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use streamchat_protocol::RoomId;
use tracing::{debug, info, warn};

/// How often the bus checks the broker (and repairs topic and assignment).
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);
/// Longest wait for the broker's metadata.
const METADATA_TIMEOUT: Duration = Duration::from_millis(1500);

/// Settings every client of this bus shares. Metadata requests are held to the
/// versions of Kafka 2.1: with newer ones, librdkafka 2.12 crashed (SIGSEGV in its
/// metadata cache) when the in-memory test broker came back without the topic.
fn base_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("api.version.request", "false")
        .set("broker.version.fallback", "2.1.0")
        .set("socket.nagle.disable", "true");
    config
}

/// Kafka could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("kafka: {0}")]
pub struct KafkaSetupError(String);

/// Notes failed deliveries (the health loop decides whether the broker is up; a node
/// reads a lost event back from the room's log).
struct DeliveryTracker;

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            debug!(error = %e, "kafka delivery failed: the event is left to the log");
        }
    }
}

/// The producer and consumer of one broker session.
struct Clients {
    producer: ThreadedProducer<DeliveryTracker>,
    consumer: StreamConsumer,
}

/// The Kafka bus of one node.
pub struct KafkaBus {
    node: String,
    topic: String,
    /// Partitions of the topic if this node creates it.
    partitions: i32,
    brokers: String,
    message_max: String,
    /// The current session's clients; none while the broker is unreachable.
    clients: Mutex<Option<Arc<Clients>>>,
    /// Rooms with local members: only their events are handed in.
    open_rooms: Mutex<HashSet<RoomId>>,
    up: AtomicBool,
    inbound: Inbox,
}

impl std::fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBus")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Connects to `brokers`, makes sure `topic` exists, reads it from the end, and
    /// starts the consumer and health tasks. `max_event_bytes` is the largest encoded
    /// event (a chunk plus its envelope).
    pub async fn connect(
        brokers: &str,
        topic: &str,
        partitions: i32,
        node: String,
        max_event_bytes: usize,
        inbound: Inbox,
    ) -> Result<Arc<Self>, KafkaSetupError> {
        let bus = Arc::new(Self {
            node,
            topic: topic.to_owned(),
            partitions,
            brokers: brokers.to_owned(),
            message_max: (max_event_bytes + 64 * 1024).to_string(),
            clients: Mutex::new(None),
            open_rooms: Mutex::new(HashSet::new()),
            up: AtomicBool::new(true),
            inbound,
        });
        bus.start_session().await?;
        tokio::spawn(consume_loop(bus.clone()));
        tokio::spawn(health_loop(bus.clone()));
        info!(topic = %bus.topic, "reading room events from kafka");
        Ok(bus)
    }

    /// Makes sure the topic exists, then creates fresh clients reading it from the end.
    async fn start_session(&self) -> Result<(), KafkaSetupError> {
        self.ensure_topic().await?;
        let producer: ThreadedProducer<DeliveryTracker> = base_config(&self.brokers)
            .set("message.max.bytes", &self.message_max)
            .set("linger.ms", "1")
            .set("message.timeout.ms", "5000")
            .set("queue.buffering.max.kbytes", "65536")
            .set("queue.buffering.max.messages", "100000")
            .create_with_context(DeliveryTracker)
            .map_err(|e| KafkaSetupError(e.to_string()))?;
        let fetch_max = (4 * self.message_max.parse::<usize>().unwrap_or(1 << 21)).max(52_428_800);
        let consumer: StreamConsumer = base_config(&self.brokers)
            .set("group.id", format!("streamchat-{}", self.node))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "latest")
            .set("fetch.wait.max.ms", "10")
            .set("fetch.message.max.bytes", &self.message_max)
            .set("fetch.max.bytes", fetch_max.to_string())
            .create()
            .map_err(|e| KafkaSetupError(e.to_string()))?;
        let topic = self.topic.clone();
        let consumer = tokio::task::spawn_blocking(move || {
            let metadata = consumer
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
                .map_err(|e| KafkaSetupError(e.to_string()))?;
            let mut list = TopicPartitionList::new();
            for t in metadata.topics().iter().filter(|t| t.name() == topic) {
                for p in t.partitions() {
                    // The end as it is now, not as the first fetch finds it later:
                    // every event published once the bus is up is read.
                    let start = consumer
                        .fetch_watermarks(&topic, p.id(), METADATA_TIMEOUT)
                        .map_or(Offset::End, |(_, high)| Offset::Offset(high));
                    list.add_partition_offset(&topic, p.id(), start)
                        .map_err(|e| KafkaSetupError(e.to_string()))?;
                }
            }
            if list.count() == 0 {
                return Err(KafkaSetupError(format!("topic {topic} has no partitions")));
            }
            consumer
                .assign(&list)
                .map_err(|e| KafkaSetupError(e.to_string()))?;
            Ok(consumer)
        })
        .await
        .map_err(|e| KafkaSetupError(e.to_string()))??;
        *self.clients.lock() = Some(Arc::new(Clients { producer, consumer }));
        Ok(())
    }

    /// Drops the current clients (in the background: closing may wait on the network).
    fn end_session(&self) {
        if let Some(clients) = self.clients.lock().take() {
            tokio::task::spawn_blocking(move || drop(clients));
        }
    }

    async fn ensure_topic(&self) -> Result<(), KafkaSetupError> {
        let admin: AdminClient<DefaultClientContext> = base_config(&self.brokers)
            .create()
            .map_err(|e| KafkaSetupError(e.to_string()))?;
        let topic = NewTopic::new(&self.topic, self.partitions, TopicReplication::Fixed(1))
            .set("retention.ms", "60000")
            .set("segment.ms", "10000")
            .set("max.message.bytes", &self.message_max);
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(5)));
        let results = admin
            .create_topics([&topic], &options)
            .await
            .map_err(|e| KafkaSetupError(e.to_string()))?;
        tokio::task::spawn_blocking(move || drop(admin));
        for result in results {
            if let Err((name, code)) = result
                && code != rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists
            {
                return Err(KafkaSetupError(format!("creating topic {name}: {code}")));
            }
        }
        Ok(())
    }

    /// Asks the broker for the topic with a short-lived client: Ok(true) if it is there.
    async fn probe(&self) -> Result<bool, KafkaSetupError> {
        let client: BaseConsumer = base_config(&self.brokers)
            .set("group.id", format!("streamchat-probe-{}", self.node))
            .create()
            .map_err(|e| KafkaSetupError(e.to_string()))?;
        let topic = self.topic.clone();
        tokio::task::spawn_blocking(move || {
            let found = client
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
                .map(|m| {
                    m.topics()
                        .iter()
                        .any(|t| t.name() == topic && !t.partitions().is_empty())
                })
                .map_err(|e| KafkaSetupError(e.to_string()));
            drop(client);
            found
        })
        .await
        .map_err(|e| KafkaSetupError(e.to_string()))?
    }

    fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::SeqCst) != up {
            if up {
                info!("kafka is reachable again");
            } else {
                warn!("kafka is unreachable: cross-node delivery paused");
            }
            self.inbound
                .try_send(Inbound::Dependency { name: "kafka", up });
        }
    }
}

impl Bus for KafkaBus {
    fn name(&self) -> &'static str {
        "kafka"
    }

    /// Every node reads every partition already: opening a room only lets its events in.
    fn open(&self, room: &RoomId) -> ClusterFuture<'_, Result<(), Unavailable>> {
        self.open_rooms.lock().insert(room.clone());
        Box::pin(std::future::ready(Ok(())))
    }

    fn close(&self, room: &RoomId) {
        self.open_rooms.lock().remove(room);
    }

    /// Queues the event keyed by its room (one partition per room, so its order holds).
    fn publish(&self, room: &RoomId, bytes: Vec<u8>) {
        let clients = self.clients.lock().clone();
        let sent = clients.is_some_and(|c| {
            let record = BaseRecord::to(&self.topic)
                .key(room.as_str())
                .payload(&bytes);
            c.producer.send(record).is_ok()
        });
        if !sent {
            debug!("kafka producer queue full or no session: the event is left to the log");
        }
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }
}

async fn consume_loop(bus: Arc<KafkaBus>) {
    loop {
        let clients = bus.clients.lock().clone();
        let Some(clients) = clients else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // Re-check now and then whether the session was replaced.
        let received =
            tokio::time::timeout(Duration::from_millis(500), clients.consumer.recv()).await;
        match received {
            Err(_) => {}
            Ok(Ok(message)) => {
                let Some(payload) = message.payload() else {
                    continue;
                };
                // Every event of an open room, this node's own too: its echo is dropped
                // by position where it was applied already, and the reaper's reach this
                // node this way. The key is the room: others are skipped undecoded.
                let open = message
                    .key()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .and_then(|k| RoomId::new(k).ok())
                    .is_some_and(|room| bus.open_rooms.lock().contains(&room));
                if open {
                    crate::bus::hand_in(&bus.inbound, payload, "kafka record");
                }
            }
            Ok(Err(e)) => {
                debug!(error = %e, "kafka consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn health_loop(bus: Arc<KafkaBus>) {
    let mut tick = tokio::time::interval(HEALTH_INTERVAL);
    loop {
        tick.tick().await;
        let has_session = bus.clients.lock().is_some();
        match bus.probe().await {
            Ok(true) if has_session => bus.set_up(true),
            Ok(_) => {
                // Back (maybe empty): a fresh session on a topic that exists.
                bus.end_session();
                match bus.start_session().await {
                    Ok(()) => bus.set_up(true),
                    Err(e) => {
                        warn!(error = %e, "kafka session not ready");
                        bus.set_up(false);
                    }
                }
            }
            Err(_) => {
                bus.end_session();
                bus.set_up(false);
            }
        }
    }
}
