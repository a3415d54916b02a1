//! The bus: carries placed room events from the node that placed them to every node that
//! has a member in the room.
//!
//! The store (`cluster.rs` `Cluster`: the rooms' logs, membership, node liveness) says
//! where an event goes in its room; the bus only carries it. A bus delivers at most once
//! and keeps each publisher's order per room; whatever it loses, a node reads back from
//! the room's log (`lib.rs` `fill_gaps`). Three buses, each behind a cargo feature of
//! this crate except the in-memory one: Redis pub/sub (`redis`), Kafka (`kafka`), and
//! `MemoryBus` (nodes in one process: the reference for the conformance suite below,
//! which every bus passes, in its tests; a single node, `cluster::SingleNode`, needs no bus).

// Built without a cluster backend, only the tests use the bus.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

use crate::cluster::{BusEvent, ClusterFuture, Inbound, Inbox, Unavailable};
use streamchat_protocol::RoomId;

/// Carries encoded [`BusEvent`]s between nodes; see the module documentation.
pub trait Bus: Send + Sync + std::fmt::Debug + 'static {
    /// Its name, for `/health` (`"redis"`, `"kafka"`, `"memory"`).
    fn name(&self) -> &'static str;

    /// Starts handing in `room`'s events. Resolves once every event published after it
    /// resolves will be handed in.
    fn open(&self, room: &RoomId) -> ClusterFuture<'_, Result<(), Unavailable>>;

    /// Stops handing in `room`'s events.
    fn close(&self, room: &RoomId);

    /// Sends an encoded event to every node that has `room` open, this one included (its
    /// echo is dropped by position where it was applied already). Never waits: an event
    /// that cannot be queued is lost here and read back from the log there.
    fn publish(&self, room: &RoomId, bytes: Vec<u8>);

    /// Whether it is reachable now.
    fn is_up(&self) -> bool;

    /// Resolves once what was published has left this node (before exit).
    fn flush(&self) -> ClusterFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Hands a received event in; when the node's inbound queue is full it is dropped and
/// the inbox marked, so that it is read back from the log.
pub(crate) fn hand_in(inbound: &Inbox, bytes: &[u8], what: &str) {
    match BusEvent::decode(bytes) {
        Ok(event) => inbound.try_send(Inbound::Event(event)),
        Err(e) => tracing::warn!(error = %e, "undecodable {what} ignored"),
    }
}

/// The conformance suite every bus passes: what the rest of the server relies on.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;
    use crate::cluster::RoomEvent;
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::time::Duration;
    use streamchat_protocol::{Binary, MemberId, MsgEvent};

    /// The nodes of one process that have a room open: each one's id and inbound queue.
    type Hearers = Vec<(u64, Inbox)>;

    /// The rooms each node of one process has open, and where to hand their events.
    #[derive(Debug, Default)]
    pub struct MemoryHub {
        open: Mutex<HashMap<RoomId, Hearers>>,
        nodes: Mutex<u64>,
    }

    /// A bus between nodes of one process.
    #[derive(Debug)]
    pub struct MemoryBus {
        hub: Arc<MemoryHub>,
        id: u64,
        inbound: Inbox,
    }

    impl MemoryBus {
        /// A node on `hub`, handing events in to `inbound`.
        pub fn new(hub: Arc<MemoryHub>, inbound: Inbox) -> Self {
            let id = {
                let mut n = hub.nodes.lock();
                *n += 1;
                *n
            };
            Self { hub, id, inbound }
        }
    }

    impl Bus for MemoryBus {
        fn name(&self) -> &'static str {
            "memory"
        }

        fn open(&self, room: &RoomId) -> ClusterFuture<'_, Result<(), Unavailable>> {
            let mut open = self.hub.open.lock();
            let nodes = open.entry(room.clone()).or_default();
            if !nodes.iter().any(|(id, _)| *id == self.id) {
                nodes.push((self.id, self.inbound.clone()));
            }
            Box::pin(std::future::ready(Ok(())))
        }

        fn close(&self, room: &RoomId) {
            let mut open = self.hub.open.lock();
            if let Some(nodes) = open.get_mut(room) {
                nodes.retain(|(id, _)| *id != self.id);
                if nodes.is_empty() {
                    open.remove(room);
                }
            }
        }

        fn publish(&self, room: &RoomId, bytes: Vec<u8>) {
            let targets: Vec<_> = self
                .hub
                .open
                .lock()
                .get(room)
                .map(|nodes| nodes.iter().map(|(_, tx)| tx.clone()).collect())
                .unwrap_or_default();
            for tx in targets {
                hand_in(&tx, &bytes, "memory bus event");
            }
        }

        fn is_up(&self) -> bool {
            true
        }
    }

    /// A fresh room id no other run uses (a Kafka topic may outlive a run).
    fn fresh_room() -> RoomId {
        use base64::Engine;
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).unwrap_or_default();
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        RoomId::new(&id).unwrap()
    }

    fn event(node: &str, room: &RoomId, pos: u64, size: usize) -> Vec<u8> {
        BusEvent {
            node: node.into(),
            room: room.clone(),
            event: RoomEvent::Msg(MsgEvent {
                room: room.clone(),
                from: MemberId::new("m").unwrap(),
                ts: pos,
                data: Binary::from(
                    (0..size)
                        .map(|i| (i as u8) ^ (pos as u8))
                        .collect::<Vec<u8>>(),
                ),
                to: None,
                pos,
            }),
            epoch: "e".into(),
            counted: true,
        }
        .encode()
        .unwrap()
    }

    /// The next event handed in for `room` (others skipped), within `ms`.
    async fn next(
        rx: &mut tokio::sync::mpsc::Receiver<Inbound>,
        room: &RoomId,
        ms: u64,
    ) -> Option<BusEvent> {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Inbound::Event(e))) if &e.room == room => return Some(e),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Runs the suite on two nodes of one bus, made by `make(node, inbound)`.
    pub(crate) async fn suite<F, Fut>(make: F)
    where
        F: Fn(String, Inbox) -> Fut,
        Fut: std::future::Future<Output = Arc<dyn Bus>>,
    {
        let (tx_a, mut rx_a) = Inbox::new(4096);
        let (tx_b, mut rx_b) = Inbox::new(4096);
        let a = make("a".into(), tx_a).await;
        let b = make("b".into(), tx_b).await;
        assert!(a.is_up() && b.is_up(), "{} is up", a.name());

        // 1. Every node that has the room open gets every event, the publisher too, in
        //    the publisher's order, once, with its bytes intact.
        let room = fresh_room();
        a.open(&room).await.unwrap();
        b.open(&room).await.unwrap();
        const N: u64 = 300;
        for pos in 1..=N {
            a.publish(&room, event("a", &room, pos, 64));
        }
        for (who, rx) in [("b", &mut rx_b), ("a", &mut rx_a)] {
            for pos in 1..=N {
                let got = next(rx, &room, 10_000).await;
                let got = got.unwrap_or_else(|| panic!("node {who}: event {pos} never came"));
                assert_eq!(got.event.pos(), pos, "node {who}: in order, each once");
                assert_eq!(
                    BusEvent::encode(&got).unwrap(),
                    event("a", &room, pos, 64),
                    "intact"
                );
            }
        }

        // 2. A file chunk's worth (1 MiB) passes intact.
        let big = event("b", &room, N + 1, 1 << 20);
        b.publish(&room, big.clone());
        let got = next(&mut rx_a, &room, 10_000)
            .await
            .expect("the 1 MiB event");
        assert_eq!(got.encode().unwrap(), big);
        let _ = next(&mut rx_b, &room, 10_000).await.expect("its echo");

        // 3. A node hears nothing of a room it closed or never opened, and hears a room
        //    again once it opens it again.
        let other = fresh_room();
        a.open(&other).await.unwrap();
        b.close(&room);
        a.publish(&room, event("a", &room, N + 2, 8));
        a.publish(&other, event("a", &other, 1, 8));
        let mut heard = Vec::new();
        while heard.len() < 2 {
            match tokio::time::timeout(Duration::from_secs(10), rx_a.recv()).await {
                Ok(Some(Inbound::Event(e))) => heard.push(e.room),
                Ok(Some(_)) => {}
                _ => panic!("node a heard {heard:?} of both rooms"),
            }
        }
        assert!(heard.contains(&room) && heard.contains(&other), "{heard:?}");
        assert!(
            next(&mut rx_b, &room, 500).await.is_none(),
            "closed: nothing handed in"
        );
        assert!(
            next(&mut rx_b, &other, 100).await.is_none(),
            "never opened: nothing handed in"
        );
        b.open(&room).await.unwrap();
        a.publish(&room, event("a", &room, N + 3, 8));
        let again = next(&mut rx_b, &room, 10_000).await.expect("heard again");
        assert_eq!(again.event.pos(), N + 3);
    }

    /// A throwaway server process of ours on a free loopback port, killed when dropped.
    struct Spawned {
        child: std::process::Child,
        port: u16,
    }

    impl Spawned {
        fn start(program: &str, args: impl Fn(u16) -> Vec<String>) -> Self {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            let child = std::process::Command::new(program)
                .args(args(port))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("MISSING: {program} ({e}); scripts/setup installs it"));
            let deadline = std::time::Instant::now() + Duration::from_secs(15);
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{program} did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Self { child, port }
        }
    }

    impl Drop for Spawned {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[cfg(feature = "redis")]
    #[tokio::test]
    #[ignore = "needs redis-server: run by scripts/test (cargo test -- --ignored conformance)"]
    async fn the_redis_bus_passes() {
        let redis = Spawned::start("redis-server", |port| {
            [
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .map(String::from)
            .to_vec()
        });
        let url = format!("redis://127.0.0.1:{}", redis.port);
        suite(|_, inbound| {
            let url = url.clone();
            async move {
                let bus: Arc<dyn Bus> = crate::redis::RedisBus::connect(&url, inbound)
                    .await
                    .expect("redis bus");
                bus
            }
        })
        .await;
    }

    #[cfg(feature = "kafka")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs the Kafka-protocol broker: run by scripts/test (cargo test -- --ignored conformance)"]
    async fn the_kafka_bus_passes() {
        let tansu = std::env::var("TANSU_BIN").unwrap_or_else(|_| {
            format!(
                "{}/.cache/streamchat-tools/bin/tansu",
                std::env::var("HOME").unwrap_or_default()
            )
        });
        let broker = Spawned::start(&tansu, |port| {
            let url = format!("tcp://127.0.0.1:{port}");
            [
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ]
            .map(String::from)
            .to_vec()
        });
        let brokers = format!("127.0.0.1:{}", broker.port);
        let topic = format!("conformance-{}", fresh_room());
        suite(|node, inbound| {
            let (brokers, topic) = (brokers.clone(), topic.clone());
            async move {
                let bus: Arc<dyn Bus> =
                    crate::kafka::KafkaBus::connect(&brokers, &topic, 3, node, 2 << 20, inbound)
                        .await
                        .expect("kafka bus");
                bus
            }
        })
        .await;
    }

    #[tokio::test]
    async fn the_memory_bus_passes() {
        let hub = Arc::new(MemoryHub::default());
        suite(|_, inbound| {
            let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new(hub.clone(), inbound));
            std::future::ready(bus)
        })
        .await;
    }
}
