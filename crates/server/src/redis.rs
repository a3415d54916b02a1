//! Redis: membership and profiles of every node's members, node liveness, and the bus
//! that carries room events between nodes (one pub/sub channel per room).
//!
//! Why not socketioxide-redis: its broadcasts publish to Redis before delivering locally
//! and give up on error (a Redis outage silences even same-node members), and a
//! broadcast cannot tell which receiver's queue was full, so slow receivers could not be
//! cut off. Here local delivery happens first in the room registry, and Redis only
//! carries events to the other nodes.
//!
//! Keys (all under `streamchat:`, none written to disk by us; run Redis without
//! persistence):
//! - `streamchat:room:<room>`: hash member → `{node, at, profile}`; gone with its last member.
//! - `streamchat:node:<node>`: liveness, expires `NODE_TTL` after the node stops refreshing.
//! - `streamchat:node:<node>:members`: set of `<room> <member>` this node registered.
//! - `streamchat:nodes`: set of node ids, for the reaper.
//! - `streamchat:reap:<node>`: short lock, so one node reaps a dead one.
//!
//! Channel `streamchat:room:<room>` carries `BusEvent`s (MessagePack).
//!
//! Every write goes through one bounded queue and one task, in order. When Redis is
//! down, writes fail fast (bounded command timeout), events for other nodes are counted
//! as dropped, `/health` says 503, and clients get a `notice`. fred reconnects with
//! bounded backoff; on reconnect this node registers its members again (a restarted
//! Redis has lost them) and resyncs the rooms it serves.

use crate::cluster::{
    AdmitError, BusEvent, Cluster, ClusterFuture, Inbound, RoomEvent, Unavailable,
};
use crate::kafka::KafkaBus;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::{Expiration, SetOptions};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use streamchat_protocol::{LeaveReason, MemberId, MemberInfo, PresenceEvent, RoomId};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// How long a node counts as alive after its last refresh.
const NODE_TTL: Duration = Duration::from_secs(6);
/// How often a node refreshes its liveness and looks for dead nodes.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// Longest wait for one Redis command before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);
/// Pending writes (presence and events) before new ones are dropped and counted.
const OUTGOING_QUEUE: usize = 8192;
const PREFIX: &str = "streamchat";

/// Admission in one step, so two nodes cannot both admit the last place of a room:
/// KEYS = room hash, this node's member set; ARGV = member, stored JSON, max, set entry.
/// Returns the room's members (field/value pairs) after the join, or nil when full.
const ADMIT_SCRIPT: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then
  return false
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[4])
return redis.call('HGETALL', KEYS[1])
";

fn room_key(room: &RoomId) -> String {
    format!("{PREFIX}:room:{room}")
}

fn node_key(node: &str) -> String {
    format!("{PREFIX}:node:{node}")
}

fn node_members_key(node: &str) -> String {
    format!("{PREFIX}:node:{node}:members")
}

/// A member as stored in a room's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredMember {
    node: String,
    at: u64,
    profile: String,
}

enum Write {
    Joined(RoomId, MemberInfo),
    Left(RoomId, MemberId),
    Publish(RoomId, Vec<u8>),
}

/// The Redis cluster backend.
pub struct RedisCluster {
    node: String,
    client: Client,
    subscriber: SubscriberClient,
    writes: mpsc::Sender<Write>,
    /// What this node registered, to register again after Redis comes back empty.
    local: Mutex<HashMap<(RoomId, MemberId), MemberInfo>>,
    up: AtomicBool,
    /// Events for other nodes that could not be queued or sent.
    dropped: AtomicU64,
    inbound: mpsc::Sender<Inbound>,
    /// With Kafka configured, room events travel there instead of Redis pub/sub.
    bus: Option<Arc<KafkaBus>>,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Redis could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisSetupError(String);

impl RedisCluster {
    /// Connects (waiting up to a few seconds for Redis), starts the background tasks and
    /// returns the cluster. Inbound events from other nodes go to `inbound`.
    pub async fn connect(
        url: &str,
        node: String,
        inbound: mpsc::Sender<Inbound>,
        bus: Option<Arc<KafkaBus>>,
    ) -> Result<Arc<Self>, RedisSetupError> {
        let config = Config::from_url(url).map_err(|e| RedisSetupError(e.to_string()))?;
        let mut builder = Builder::from_config(config);
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2000, 2))
            .with_connection_config(|c| {
                c.connection_timeout = COMMAND_TIMEOUT;
                c.internal_command_timeout = COMMAND_TIMEOUT;
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| {
                p.default_command_timeout = COMMAND_TIMEOUT;
                p.broadcast_channel_capacity = 4096;
            });
        let client = builder
            .build()
            .map_err(|e| RedisSetupError(e.to_string()))?;
        let subscriber = builder
            .build_subscriber_client()
            .map_err(|e| RedisSetupError(e.to_string()))?;
        let init = async {
            client.init().await?;
            subscriber.init().await?;
            Ok::<_, Error>(())
        };
        tokio::time::timeout(Duration::from_secs(5), init)
            .await
            .map_err(|_| RedisSetupError(format!("no answer from {}", redacted(url))))?
            .map_err(|e| RedisSetupError(e.to_string()))?;
        let _resubscribe = subscriber.manage_subscriptions();

        let (writes, write_rx) = mpsc::channel(OUTGOING_QUEUE);
        let cluster = Arc::new(Self {
            node,
            client,
            subscriber,
            writes,
            local: Mutex::new(HashMap::new()),
            up: AtomicBool::new(true),
            dropped: AtomicU64::new(0),
            inbound,
            bus,
        });
        cluster.heartbeat_once().await;
        tokio::spawn(write_loop(cluster.clone(), write_rx));
        tokio::spawn(listen_loop(cluster.clone()));
        tokio::spawn(heartbeat_loop(cluster.clone()));
        tokio::spawn(reconnect_loop(cluster.clone()));
        info!(node = %cluster.node, "joined the Redis cluster");
        Ok(cluster)
    }

    fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::SeqCst) != up {
            if up {
                info!("redis is reachable again");
            } else {
                warn!("redis is unreachable: cross-node delivery paused");
            }
            let _ = self
                .inbound
                .try_send(Inbound::Dependency { name: "redis", up });
        }
    }

    async fn heartbeat_once(&self) {
        let alive: Result<(), Error> = async {
            let _: () = self
                .client
                .set(
                    node_key(&self.node),
                    "1",
                    Some(Expiration::EX(NODE_TTL.as_secs() as i64)),
                    None,
                    false,
                )
                .await?;
            let _: () = self
                .client
                .sadd(format!("{PREFIX}:nodes"), self.node.as_str())
                .await?;
            Ok(())
        }
        .await;
        self.set_up(alive.is_ok());
    }

    /// Finds nodes whose liveness key expired and takes their members out of presence,
    /// telling each room that they timed out.
    async fn reap_dead_nodes(&self) -> Result<(), Error> {
        let nodes: Vec<String> = self.client.smembers(format!("{PREFIX}:nodes")).await?;
        for node in nodes.into_iter().filter(|n| n != &self.node) {
            let alive: u32 = self.client.exists(node_key(&node)).await?;
            if alive > 0 {
                continue;
            }
            let lock: Option<String> = self
                .client
                .set(
                    format!("{PREFIX}:reap:{node}"),
                    &self.node,
                    Some(Expiration::EX(30)),
                    Some(SetOptions::NX),
                    false,
                )
                .await?;
            if lock.is_none() {
                continue; // another node is reaping it
            }
            let entries: Vec<String> = self.client.smembers(node_members_key(&node)).await?;
            info!(dead = %node, members = entries.len(), "reaping a node that stopped");
            for entry in entries {
                let Some((room, member)) = entry.split_once(' ') else {
                    continue;
                };
                let (Ok(room), Ok(member)) = (RoomId::new(room), MemberId::new(member)) else {
                    continue;
                };
                let _: () = self.client.hdel(room_key(&room), member.as_str()).await?;
                let event = BusEvent {
                    node: node.clone(),
                    room: room.clone(),
                    event: RoomEvent::Presence(PresenceEvent::Leave {
                        room: room.clone(),
                        member,
                        at: crate::room::now_millis(),
                        reason: LeaveReason::Timeout,
                        pos: 0,
                    }),
                };
                if let Ok(bytes) = event.encode() {
                    match &self.bus {
                        Some(bus) => bus.publish(&room, &bytes),
                        None => {
                            let _: () = self.client.publish(room_key(&room), bytes).await?;
                        }
                    }
                }
            }
            let _: () = self.client.del(node_members_key(&node)).await?;
            let _: () = self
                .client
                .srem(format!("{PREFIX}:nodes"), node.as_str())
                .await?;
            let _: () = self.client.del(format!("{PREFIX}:reap:{node}")).await?;
        }
        Ok(())
    }

    async fn write(&self, write: Write) -> Result<(), Error> {
        match write {
            Write::Joined(room, info) => {
                let stored = StoredMember {
                    node: self.node.clone(),
                    at: info.at,
                    profile: info.profile,
                };
                let json = serde_json::to_string(&stored)
                    .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
                let _: () = self
                    .client
                    .hset(room_key(&room), (info.member.as_str(), json))
                    .await?;
                let _: () = self
                    .client
                    .sadd(
                        node_members_key(&self.node),
                        format!("{room} {}", info.member),
                    )
                    .await?;
            }
            Write::Left(room, member) => {
                let _: () = self.client.hdel(room_key(&room), member.as_str()).await?;
                let _: () = self
                    .client
                    .srem(node_members_key(&self.node), format!("{room} {member}"))
                    .await?;
            }
            Write::Publish(room, bytes) => {
                let _: () = self.client.publish(room_key(&room), bytes).await?;
            }
        }
        Ok(())
    }

    fn enqueue(&self, write: Write) {
        if self.writes.try_send(write).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    async fn fetch_remote(&self, room: &RoomId) -> Result<Vec<MemberInfo>, Error> {
        let stored: HashMap<String, String> = self.client.hgetall(room_key(room)).await?;
        Ok(self.others(stored))
    }

    /// The members of other nodes among a room hash's entries, in join order.
    fn others(&self, stored: impl IntoIterator<Item = (String, String)>) -> Vec<MemberInfo> {
        let mut members: Vec<MemberInfo> = stored
            .into_iter()
            .filter_map(|(member, json)| {
                let s: StoredMember = serde_json::from_str(&json).ok()?;
                if s.node == self.node {
                    return None;
                }
                Some(MemberInfo {
                    member: MemberId::new(member).ok()?,
                    at: s.at,
                    profile: s.profile,
                })
            })
            .collect();
        members.sort_by_key(|m| m.at);
        members
    }

    async fn admit_now(
        &self,
        room: &RoomId,
        info: &MemberInfo,
        max_members: usize,
    ) -> Result<Vec<MemberInfo>, AdmitError> {
        let stored = StoredMember {
            node: self.node.clone(),
            at: info.at,
            profile: info.profile.clone(),
        };
        let json = serde_json::to_string(&stored).map_err(|_| AdmitError::Unavailable)?;
        let entry = format!("{room} {}", info.member);
        let args = vec![
            info.member.to_string(),
            json,
            max_members.to_string(),
            entry,
        ];
        let reply: Result<Option<Vec<String>>, Error> = self
            .client
            .eval(
                ADMIT_SCRIPT,
                vec![room_key(room), node_members_key(&self.node)],
                args,
            )
            .await;
        match reply {
            Ok(None) => Err(AdmitError::Full),
            Ok(Some(flat)) => {
                self.set_up(true);
                self.local
                    .lock()
                    .insert((room.clone(), info.member.clone()), info.clone());
                let pairs = flat.chunks_exact(2).map(|p| (p[0].clone(), p[1].clone()));
                Ok(self.others(pairs.collect::<Vec<_>>()))
            }
            Err(e) => {
                warn!(error = %e, "admission through redis failed");
                self.set_up(false);
                Err(AdmitError::Unavailable)
            }
        }
    }

    /// After Redis came back (maybe empty): register this node's members again and
    /// resync every room this node serves.
    async fn recover(&self) {
        let local: Vec<(RoomId, MemberInfo)> = self
            .local
            .lock()
            .iter()
            .map(|((room, _), info)| (room.clone(), info.clone()))
            .collect();
        for (room, info) in &local {
            if let Err(e) = self.write(Write::Joined(room.clone(), info.clone())).await {
                warn!(error = %e, "re-registering presence failed");
                return;
            }
        }
        let mut rooms: Vec<RoomId> = local.into_iter().map(|(r, _)| r).collect();
        rooms.sort();
        rooms.dedup();
        for room in rooms {
            match self.fetch_remote(&room).await {
                Ok(remote) => {
                    let _ = self.inbound.try_send(Inbound::Resync { room, remote });
                }
                Err(e) => warn!(error = %e, "resync failed"),
            }
        }
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_owned(),
    }
}

async fn write_loop(cluster: Arc<RedisCluster>, mut rx: mpsc::Receiver<Write>) {
    while let Some(write) = rx.recv().await {
        let publish = matches!(write, Write::Publish(..));
        match cluster.write(write).await {
            Ok(()) => cluster.set_up(true),
            Err(_) => {
                if publish {
                    cluster.dropped.fetch_add(1, Ordering::Relaxed);
                }
                cluster.set_up(false);
            }
        }
    }
}

async fn listen_loop(cluster: Arc<RedisCluster>) {
    let mut messages = cluster.subscriber.message_rx();
    loop {
        match messages.recv().await {
            Ok(message) => {
                let Some(bytes) = message.value.as_bytes() else {
                    continue;
                };
                match BusEvent::decode(bytes) {
                    Ok(event) if event.node != cluster.node => {
                        if cluster.inbound.try_send(Inbound::Event(event)).is_err() {
                            cluster.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(_) => {} // our own event, already delivered locally
                    Err(e) => warn!(error = %e, "undecodable bus message ignored"),
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                cluster.dropped.fetch_add(n, Ordering::Relaxed);
                warn!(missed = n, "bus listener lagged");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn heartbeat_loop(cluster: Arc<RedisCluster>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        cluster.heartbeat_once().await;
        if cluster.up.load(Ordering::SeqCst)
            && let Err(e) = cluster.reap_dead_nodes().await
        {
            warn!(error = %e, "reaping dead nodes failed");
        }
    }
}

async fn reconnect_loop(cluster: Arc<RedisCluster>) {
    let mut reconnects = cluster.client.reconnect_rx();
    while reconnects.recv().await.is_ok() {
        info!("reconnected to redis");
        cluster.heartbeat_once().await;
        cluster.recover().await;
    }
}

impl Cluster for RedisCluster {
    fn backend(&self) -> &'static str {
        if self.bus.is_some() {
            "redis+kafka"
        } else {
            "redis"
        }
    }

    fn node_id(&self) -> &str {
        &self.node
    }

    fn room_opened(&self, room: &RoomId) -> ClusterFuture<'_, Result<(), Unavailable>> {
        if let Some(bus) = &self.bus {
            bus.open(room);
            return Box::pin(std::future::ready(Ok(())));
        }
        let channel = room_key(room);
        Box::pin(async move {
            self.subscriber
                .subscribe(channel)
                .await
                .map_err(|_| Unavailable)
        })
    }

    fn room_closed(&self, room: &RoomId) {
        if let Some(bus) = &self.bus {
            bus.close(room);
            return;
        }
        let subscriber = self.subscriber.clone();
        let channel = room_key(room);
        tokio::spawn(async move {
            let _ = subscriber.unsubscribe(channel).await;
        });
    }

    fn admit(
        &self,
        room: &RoomId,
        member: &MemberInfo,
        max_members: usize,
    ) -> ClusterFuture<'_, Result<Vec<MemberInfo>, AdmitError>> {
        let (room, member) = (room.clone(), member.clone());
        Box::pin(async move { self.admit_now(&room, &member, max_members).await })
    }

    fn joined_offline(&self, room: &RoomId, member: &MemberInfo) {
        // Registered by `recover` when Redis returns.
        self.local
            .lock()
            .insert((room.clone(), member.member.clone()), member.clone());
    }

    fn left(&self, room: &RoomId, member: &MemberId) {
        self.local.lock().remove(&(room.clone(), member.clone()));
        self.enqueue(Write::Left(room.clone(), member.clone()));
    }

    fn publish(&self, room: &RoomId, event: RoomEvent) {
        let bus = BusEvent {
            node: self.node.clone(),
            room: room.clone(),
            event,
        };
        match (bus.encode(), &self.bus) {
            (Ok(bytes), Some(kafka)) => kafka.publish(room, &bytes),
            (Ok(bytes), None) => self.enqueue(Write::Publish(room.clone(), bytes)),
            (Err(e), _) => warn!(error = %e, "bus event not encodable"),
        }
    }

    fn dependencies(&self) -> Vec<(&'static str, bool)> {
        let mut deps = vec![("redis", self.up.load(Ordering::SeqCst))];
        if let Some(bus) = &self.bus {
            deps.push(("kafka", bus.is_up()));
        }
        deps
    }

    fn shutdown(&self) -> ClusterFuture<'_, ()> {
        Box::pin(async move {
            // Let queued leaves and events go out first (bounded wait).
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while self.writes.capacity() < self.writes.max_capacity()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let local: Vec<(RoomId, MemberId)> =
                self.local.lock().drain().map(|(k, _)| k).collect();
            for (room, member) in local {
                let _ = self.write(Write::Left(room, member)).await;
            }
            let _: Result<(), _> = self.client.del(node_members_key(&self.node)).await;
            let _: Result<(), _> = self.client.del(node_key(&self.node)).await;
            let _: Result<(), _> = self
                .client
                .srem(format!("{PREFIX}:nodes"), self.node.as_str())
                .await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("redis://:hunter2@127.0.0.1:6379"),
            "redis://…@127.0.0.1:6379"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
