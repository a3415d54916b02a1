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
//! persistence). Every key of a room carries the room's hash tag, `{<room>}`, so on a
//! Redis Cluster a room's members, log and tokens live in one slot and the log script
//! touches nothing else; the node keys are each used alone, in any slot.
//! - `streamchat:{<room>}:members`: hash member → `{node, at, profile}`; gone with its
//!   last member. Beside it `:state`, `:log`, `:tokens`, `:away` and `:dup:<key>` (the
//!   log script's keys, `lua/log.lua`).
//! - `streamchat:node:<node>`: liveness, expires `NODE_TTL` after the node stops refreshing.
//! - `streamchat:node:<node>:members`: set of `<room> <member>` this node holds. Only an
//!   index for the reaper, written beside the log script (not in it: it lives in another
//!   slot): added before a member is admitted, removed after it left, so it may name a
//!   member that already left or moved to another node, never miss one. The reaper's
//!   operations check the room's own record of the node, so a stale entry changes nothing.
//! - `streamchat:nodes`: set of node ids, for the reaper.
//! - `streamchat:reap:<node>`: short lock, so one node reaps a dead one.
//!
//! Channel `streamchat:{<room>}:bus` carries `BusEvent`s (MessagePack) when Redis is also
//! the bus ([`RedisBus`], one of the buses of `bus.rs`): classic pub/sub on a single Redis,
//! sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7) on a Redis Cluster, so an event
//! reaches only the shard that owns its room, not every node of the cluster.
//!
//! Every write goes through one bounded queue and one task, in order. When Redis is
//! down, writes fail fast (bounded command timeout), `/health` says 503, and clients get
//! a `notice`. fred reconnects with
//! bounded backoff; on reconnect this node registers its members again (a restarted
//! Redis has lost them) and resyncs the rooms it serves.

use crate::bus::Bus;
use crate::cluster::{
    BusEvent, Cluster, ClusterFuture, Fetched, Inbound, Inbox, LogDone, LogHint, LogOp, LogOutcome,
    Placed, RoomEvent, Unavailable,
};
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::{Expiration, SetOptions};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use streamchat_protocol::{LeaveReason, MemberId, MemberInfo, Pos, PresenceEvent, RoomId};
use tokio::sync::mpsc;
use tracing::{info, warn};

/// How long a node counts as alive after its last refresh.
const NODE_TTL: Duration = Duration::from_secs(6);
/// How often a node refreshes its liveness and looks for dead nodes.
const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a node's liveness key must stay missing, once seen missing, before the node
/// counts as dead. A live node's key can expire without it dying: on a Redis Cluster the
/// key's master may fail, and while its replica takes over (seconds, or the cluster's
/// node timeout) nobody can refresh it. Once the shard answers again, a live node sets
/// it within one `HEARTBEAT`; this wait gives it three.
const DEAD_AFTER_MISSING: Duration = Duration::from_secs(6);
/// Longest wait for one Redis command before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(1500);
/// Events waiting to be published before new ones are left to the log.
const OUTGOING_QUEUE: usize = 8192;
const PREFIX: &str = "streamchat";

/// The room log script (`lua/log.lua`): positions, the replay window, and the
/// membership changes that go with presence events, in one atomic step.
const LOG_SCRIPT: &str = include_str!("lua/log.lua");

/// Operations waiting for the log, before new ones are refused (`unavailable`).
const LOG_QUEUE: usize = 16_384;
/// On a Redis Cluster, how long an operation waits for a replica to have it (`WAIT 1`)
/// before it is acknowledged; and how long a shard that had none is not asked again.
const REPLICA_WAIT_MS: i64 = 200;
const NO_REPLICA_BACKOFF: Duration = Duration::from_secs(5);
/// How many of a room's last events are published again after an operation on it got
/// no answer: enough to reach past what other operations placed meanwhile; an event
/// further back has later ones that show its gap.
const UNSURE_TAIL: Pos = 16;
/// At most this many rooms wait to have their tails published again.
const UNSURE_ROOMS: usize = 4096;

/// Log operations run in this many lanes, a room always in the same one: in call order
/// within a room, concurrently across rooms. So a Redis Cluster shard that fails (every
/// command to it waits out `COMMAND_TIMEOUT` until its replica takes over) holds up its
/// own rooms and the few that share their lanes, not every room of the node, and a single
/// Redis gets up to this many scripts in flight instead of one.
const LOG_LANES: usize = 16;

/// One key of a room: `streamchat:{<room>}:<what>`. The braces are Redis Cluster's hash
/// tag: every key of a room hashes to the room's slot.
fn room_part(room: &RoomId, what: &str) -> String {
    format!("{PREFIX}:{{{room}}}:{what}")
}

/// The keys of one room's log, in the script's order; `dup` is the resend key of an
/// `event` (or none).
fn log_keys(room: &RoomId, dup: Option<&str>) -> Vec<String> {
    vec![
        room_key(room),
        room_part(room, "state"),
        room_part(room, "log"),
        room_part(room, "tokens"),
        room_part(room, "away"),
        dup.map_or_else(
            || room_part(room, "dup"),
            |d| room_part(room, &format!("dup:{d}")),
        ),
    ]
}

/// A room's bus channel.
fn bus_channel(room: &RoomId) -> String {
    room_part(room, "bus")
}

/// A `<room> <member>` entry of a node's member set.
fn node_entry(room: &RoomId, member: &MemberId) -> String {
    format!("{room} {member}")
}

/// A fresh epoch candidate: 8 random bytes, hex.
fn new_epoch() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bounds of every room's log in the store.
#[derive(Debug, Clone, Copy)]
pub struct LogBounds {
    /// Milliseconds an event is kept.
    pub window_ms: u64,
    /// Bytes a room's log holds at most.
    pub bytes: usize,
    /// Milliseconds a member of a node that died stays a member, away.
    pub grace_ms: u64,
}

struct LogJob {
    room: RoomId,
    op: LogOp,
    hint: LogHint,
    done: LogDone,
}

fn room_key(room: &RoomId) -> String {
    room_part(room, "members")
}

fn node_key(node: &str) -> String {
    format!("{PREFIX}:node:{node}")
}

fn node_members_key(node: &str) -> String {
    format!("{PREFIX}:node:{node}:members")
}

/// A member as stored in a room's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMember {
    /// The node that holds it.
    pub node: String,
    /// When it joined (server ms).
    pub at: u64,
    /// Its sealed profile (base64url).
    pub profile: String,
}

/// The Redis cluster backend.
pub struct RedisCluster {
    node: String,
    client: Client,
    /// What this node registered, to register again after Redis comes back empty.
    local: Mutex<HashMap<(RoomId, MemberId), MemberInfo>>,
    up: AtomicBool,
    inbound: Inbox,
    /// Carries placed events to the other nodes: Redis pub/sub or Kafka.
    bus: Arc<dyn Bus>,
    /// Operations for the room logs: one lane per room hash, each run one after the
    /// other in call order (`LOG_LANES`).
    log_jobs: Vec<mpsc::Sender<LogJob>>,
    /// The log script's SHA1, once loaded.
    log_sha: Mutex<Option<String>>,
    bounds: LogBounds,
    /// Other nodes whose liveness key was seen missing, and since when.
    missing: Mutex<HashMap<String, tokio::time::Instant>>,
    /// Whether `client` talks to a Redis Cluster (read once: it is asked per operation).
    clustered: bool,
    /// Redis Cluster masters that had no replica to copy an operation to, and until when
    /// they are not asked to wait again.
    no_replica: Mutex<HashMap<fred::types::config::Server, tokio::time::Instant>>,
    /// Rooms with an operation whose answer never came: the script may have placed its
    /// event without this node publishing it. Their log tails are published again once
    /// Redis answers (`republish_loop`). Bounded by `UNSURE_ROOMS`.
    unsure: Mutex<std::collections::HashSet<RoomId>>,
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

/// A client builder for `url`: fast failure, bounded reconnect backoff.
fn builder(url: &str) -> Result<Builder, RedisSetupError> {
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
    Ok(builder)
}

/// Waits up to a few seconds for `init` (connecting to `url`).
async fn connected(
    url: &str,
    init: impl std::future::Future<Output = Result<(), Error>>,
) -> Result<(), RedisSetupError> {
    tokio::time::timeout(Duration::from_secs(5), init)
        .await
        .map_err(|_| RedisSetupError(format!("no answer from {}", redacted(url))))?
        .map_err(|e| RedisSetupError(e.to_string()))
}

impl RedisCluster {
    /// Connects (waiting up to a few seconds for Redis), starts the background tasks and
    /// returns the cluster. Placed events travel on `bus`; the other nodes' arrive (from
    /// the bus) in `inbound`, and so do changes of Redis's reachability.
    pub async fn connect(
        url: &str,
        node: String,
        inbound: Inbox,
        bus: Arc<dyn Bus>,
        bounds: LogBounds,
    ) -> Result<Arc<Self>, RedisSetupError> {
        let client = builder(url)?
            .build()
            .map_err(|e| RedisSetupError(e.to_string()))?;
        connected(url, async { client.init().await.map(|_| ()) }).await?;

        let (log_jobs, lanes): (Vec<_>, Vec<_>) = (0..LOG_LANES)
            .map(|_| mpsc::channel(LOG_QUEUE / LOG_LANES))
            .unzip();
        let cluster = Arc::new(Self {
            node,
            local: Mutex::new(HashMap::new()),
            up: AtomicBool::new(true),
            inbound,
            bus,
            log_jobs,
            log_sha: Mutex::new(None),
            bounds,
            missing: Mutex::new(HashMap::new()),
            clustered: client.client_config().server.is_clustered(),
            no_replica: Mutex::new(HashMap::new()),
            unsure: Mutex::new(std::collections::HashSet::new()),
            client,
        });
        cluster.heartbeat_once().await;
        for lane in lanes {
            tokio::spawn(log_loop(cluster.clone(), lane));
        }
        tokio::spawn(heartbeat_loop(cluster.clone()));
        tokio::spawn(reconnect_loop(cluster.clone()));
        tokio::spawn(republish_loop(cluster.clone()));
        info!(node = %cluster.node, "joined the Redis cluster");
        Ok(cluster)
    }

    fn set_up(&self, up: bool) {
        if self.up.swap(up, Ordering::SeqCst) != up {
            if up {
                info!("redis is reachable again");
                // What other nodes published meanwhile never reached this one.
                self.inbound.mark_missed();
            } else {
                warn!("redis is unreachable: cross-node delivery paused");
            }
            self.inbound
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

    /// Finds nodes whose liveness key expired and takes their members over: each is
    /// away (the others see it reconnecting) and leaves when the grace runs out, unless it
    /// resumed on another node meanwhile (its entry then names that node, and the leave is
    /// refused by the log).
    async fn reap_dead_nodes(self: &Arc<Self>) -> Result<(), Error> {
        let nodes: Vec<String> = self.client.smembers(format!("{PREFIX}:nodes")).await?;
        for node in nodes.into_iter().filter(|n| n != &self.node) {
            let alive: u32 = self.client.exists(node_key(&node)).await?;
            if alive > 0 {
                self.missing.lock().remove(&node);
                continue;
            }
            let since = *self
                .missing
                .lock()
                .entry(node.clone())
                .or_insert_with(tokio::time::Instant::now);
            if since.elapsed() < DEAD_AFTER_MISSING {
                continue; // maybe its key's shard just failed over: give it time to refresh
            }
            self.missing.lock().remove(&node);
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
            info!(dead = %node, members = entries.len(), "taking over the members of a node that stopped");
            for entry in entries {
                let Some((room, member)) = entry.split_once(' ') else {
                    continue;
                };
                let (Ok(room), Ok(member)) = (RoomId::new(room), MemberId::new(member)) else {
                    continue;
                };
                let since: Option<String> = self
                    .client
                    .hget(room_part(&room, "away"), member.as_str())
                    .await?;
                match since.and_then(|s| s.parse::<u64>().ok()) {
                    Some(since) => self.expire_later(&room, &member, &node, since, since),
                    None => {
                        let at = crate::relay::now_millis();
                        let event = RoomEvent::Presence(PresenceEvent::Away {
                            room: room.clone(),
                            member: member.clone(),
                            at,
                            pos: 0,
                        });
                        let this = self.clone();
                        let node = node.clone();
                        tokio::spawn(async move {
                            let op = LogOp::Away {
                                member: member.clone(),
                                node: node.clone(),
                                event,
                            };
                            if let Some(LogOutcome::Placed(p)) =
                                this.log_until_answered(&room, op).await
                            {
                                this.expire_later(&room, &member, &node, p.ts, at);
                            }
                        });
                    }
                }
            }
            let _: () = self.client.del(node_members_key(&node)).await?;
            let _: () = self
                .client
                .srem(format!("{PREFIX}:nodes"), node.as_str())
                .await?;
        }
        Ok(())
    }

    /// When the grace of `member` (held by dead `node`, away since `since` by the log's
    /// clock, `at` by its node's) runs out: its leave, unless it came back meanwhile.
    fn expire_later(
        self: &Arc<Self>,
        room: &RoomId,
        member: &MemberId,
        node: &str,
        since: u64,
        at: u64,
    ) {
        let this = self.clone();
        let (room, member, node) = (room.clone(), member.clone(), node.to_owned());
        let grace = Duration::from_millis(self.bounds.grace_ms);
        tokio::spawn(async move {
            let left = crate::relay::now_millis().saturating_sub(since);
            tokio::time::sleep(grace.saturating_sub(Duration::from_millis(left))).await;
            let event = RoomEvent::Presence(PresenceEvent::Leave {
                room: room.clone(),
                member: member.clone(),
                at,
                reason: LeaveReason::Timeout,
                pos: 0,
            });
            let op = LogOp::Remove {
                member,
                node,
                if_away_since: Some(since),
                event,
            };
            this.log_until_answered(&room, op).await;
        });
    }

    /// Runs a reaper's operation, again every second while the store cannot answer (a
    /// Redis restarting, a Redis Cluster shard failing over), for up to a minute: a dead
    /// node's member must not stay away forever because one attempt met a failover.
    /// Returns the outcome, or `None` if it never ran.
    async fn log_until_answered(self: &Arc<Self>, room: &RoomId, op: LogOp) -> Option<LogOutcome> {
        for _ in 0..60 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.log(
                room,
                op.clone(),
                LogHint::default(),
                Box::new(move |result| {
                    let _ = tx.send(result);
                }),
            );
            match rx.await {
                Ok(Ok(outcome)) => return Some(outcome),
                _ => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
        warn!("a reaper's room log operation kept failing: given up");
        None
    }

    /// Registers a member of this node in its room's hash (after Redis lost it).
    async fn register(&self, room: &RoomId, info: &MemberInfo) -> Result<(), Error> {
        let stored = StoredMember {
            node: self.node.clone(),
            at: info.at,
            profile: info.profile.clone(),
        };
        let json = serde_json::to_string(&stored)
            .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
        let _: () = self
            .client
            .hset(room_key(room), (info.member.as_str(), json))
            .await?;
        let _: () = self
            .client
            .sadd(node_members_key(&self.node), node_entry(room, &info.member))
            .await?;
        Ok(())
    }

    /// After Redis came back (maybe empty): register this node's members again.
    async fn recover(&self) {
        let local: Vec<(RoomId, MemberInfo)> = self
            .local
            .lock()
            .iter()
            .map(|((room, _), info)| (room.clone(), info.clone()))
            .collect();
        for (room, info) in &local {
            if let Err(e) = self.register(room, info).await {
                warn!(error = %e, "re-registering presence failed");
                return;
            }
        }
    }
}

impl RedisCluster {
    /// Runs the log script (loading it first, and again after a Redis restart).
    async fn eval_log(&self, keys: Vec<String>, args: Vec<Value>) -> Result<Vec<Value>, Error> {
        let known = self.log_sha.lock().clone();
        let sha = match known {
            Some(sha) => sha,
            None => {
                let sha: String = self.client.script_load(LOG_SCRIPT).await?;
                *self.log_sha.lock() = Some(sha.clone());
                sha
            }
        };
        match self
            .client
            .evalsha::<Vec<Value>, _, _, _>(sha, keys.clone(), args.clone())
            .await
        {
            // The Redis that owns this room does not know the script: it restarted, or,
            // on a Redis Cluster, it is a master that never ran it or a replica just
            // promoted. EVAL sends it whole, and that Redis keeps it for the next time.
            Err(e) if e.details().contains("NOSCRIPT") => {
                self.client.eval(LOG_SCRIPT, keys, args).await
            }
            other => other,
        }
    }

    /// On a Redis Cluster: waits until a replica of the room's master has the operation
    /// just run (`WAIT 1`, at most `REPLICA_WAIT_MS`), so that a failover cannot take back
    /// an event that was acknowledged and give its position to another. A master that has
    /// no replica in that time (its replica is the one that failed, or the master is a
    /// replica just promoted) is not waited on for `NO_REPLICA_BACKOFF`: the cluster runs
    /// on, as Redis itself does, without that guarantee until a replica is back.
    ///
    /// It never fails the operation: the script has run, so its event must be delivered
    /// and answered. A wait that errs counts as no copy (logged, and the master is not
    /// waited on for a while); failing here would leave an applied event unpublished.
    async fn wait_for_replica(&self, room: &RoomId) {
        if !self.clustered {
            return;
        }
        let slot = fred::util::redis_keyslot(room_key(room).as_bytes());
        let Some(server) = self
            .client
            .cached_cluster_state()
            .and_then(|state| state.get_server(slot).cloned())
        else {
            return;
        };
        if let Some(until) = self.no_replica.lock().get(&server)
            && tokio::time::Instant::now() < *until
        {
            return;
        }
        // The same connection as the script's (one per master), so the wait covers it.
        let copies: Result<i64, Error> = self
            .client
            .with_cluster_node(server.clone())
            .wait(1, REPLICA_WAIT_MS)
            .await;
        let copies = copies.unwrap_or_else(|e| {
            warn!(error = %e, master = %server, "waiting for a replica failed");
            0
        });
        if copies < 1 {
            warn!(master = %server, "no replica acknowledged a room log operation: not waiting on this master for a while");
            self.no_replica
                .lock()
                .insert(server, tokio::time::Instant::now() + NO_REPLICA_BACKOFF);
        }
    }

    /// Puts one operation in a room's log; publishes what it placed to the other nodes.
    async fn run_log(&self, room: &RoomId, op: LogOp, hint: LogHint) -> Result<LogOutcome, Error> {
        let window_ms = self.bounds.window_ms;
        let counted = matches!(&op, LogOp::Event { dedup: Some(d), .. } if d.starts_with("m:"));
        let mut joined: Option<MemberInfo> = None;
        // The node member set (an index in another slot, see the module's docs): this
        // node's entry goes in before the script admits or resumes a member here, and
        // the holder's goes out after a member left.
        let mut index_in: Option<MemberId> = None;
        let mut index_out: Option<(String, MemberId)> = None;
        let mut dup: Option<String> = None;
        let (kind, mut event, extra): (&str, RoomEvent, Vec<Value>) = match op {
            LogOp::Event { event, dedup } => {
                let flag = if dedup.is_some() { "1" } else { "" };
                dup = dedup;
                ("event", event, vec![flag.into(), (window_ms as i64).into()])
            }
            LogOp::Admit {
                member,
                max,
                token,
                event,
            } => {
                joined = Some(member.clone());
                index_in = Some(member.member.clone());
                let stored = StoredMember {
                    node: self.node.clone(),
                    at: member.at,
                    profile: member.profile.clone(),
                };
                let json = serde_json::to_string(&stored)
                    .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
                let args = vec![
                    member.member.to_string().into(),
                    json.into(),
                    (max as i64).into(),
                    token.into(),
                ];
                ("admit", event, args)
            }
            LogOp::Away {
                member,
                node,
                event,
            } => ("away", event, vec![member.to_string().into(), node.into()]),
            LogOp::Remove {
                member,
                node,
                if_away_since,
                event,
            } => {
                if node == self.node {
                    // Gone from this node whatever the answer: a Redis that comes back
                    // empty must not get it registered again.
                    self.local.lock().remove(&(room.clone(), member.clone()));
                }
                let since = if_away_since.map_or(String::new(), |s| s.to_string());
                let args = vec![member.to_string().into(), node.clone().into(), since.into()];
                index_out = Some((node, member));
                ("remove", event, args)
            }
            LogOp::Resume {
                member,
                token,
                new_token,
                event,
            } => {
                index_in = Some(member.clone());
                let args = vec![
                    member.to_string().into(),
                    token.into(),
                    new_token.into(),
                    self.node.clone().into(),
                ];
                ("resume", event, args)
            }
        };
        let unplaced = BusEvent {
            node: self.node.clone(),
            room: room.clone(),
            event: event.clone(),
            epoch: String::new(),
            counted,
        };
        let bytes = unplaced
            .encode()
            .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
        let mut args: Vec<Value> = vec![
            kind.into(),
            Value::Bytes(bytes.into()),
            (window_ms as i64).into(),
            (self.bounds.bytes as i64).into(),
            hint.epoch
                .as_deref()
                .map_or_else(new_epoch, str::to_owned)
                .into(),
            (hint.pos as i64).into(),
            room.to_string().into(),
        ];
        args.extend(extra);
        if let Some(member) = &index_in {
            let _: () = self
                .client
                .sadd(node_members_key(&self.node), node_entry(room, member))
                .await?;
        }
        let reply = self.eval_log(log_keys(room, dup.as_deref()), args).await?;
        self.wait_for_replica(room).await;
        let (placed, members, resumed) = match decode_log_reply(kind, &reply) {
            LogReply::Full => {
                // Not admitted: a member id is one connection's, so nothing else holds it.
                if let Some(member) = &index_in {
                    let _: Result<(), Error> = self
                        .client
                        .srem(node_members_key(&self.node), node_entry(room, member))
                        .await;
                }
                return Ok(LogOutcome::Full);
            }
            LogReply::Refused => return Ok(LogOutcome::Refused),
            LogReply::Placed {
                placed,
                members,
                resumed,
            } => (placed, members, resumed),
        };
        if placed.duplicate {
            // Sent again because its answer never came: the first try may have placed it
            // and failed before publishing it. Publishing the logged copy again costs a
            // read; every node drops a position it has.
            if let Err(e) = self.republish(room, placed.pos - 1, placed.pos + 1).await {
                warn!(error = %e, "a resent event's logged copy was not published again");
            }
            return Ok(LogOutcome::Placed(placed));
        }
        // What this node registered, to register again if Redis comes back empty.
        if let Some(info) = joined {
            self.local
                .lock()
                .insert((room.clone(), info.member.clone()), info);
        }
        event.place(placed.pos, placed.ts);
        let bus = BusEvent {
            node: self.node.clone(),
            room: room.clone(),
            event,
            epoch: placed.epoch.to_string(),
            counted,
        };
        match bus.encode() {
            Ok(bytes) => self.bus.publish(room, bytes),
            Err(e) => warn!(error = %e, "bus event not encodable"),
        }
        // A resumed member moved here: the node that held it no longer does.
        if let (Some(member), Some(stored)) = (&index_in, &resumed)
            && stored.node != self.node
        {
            index_out = Some((stored.node.clone(), member.clone()));
        }
        if let Some((node, member)) = index_out {
            let dropped: Result<(), Error> = self
                .client
                .srem(node_members_key(&node), node_entry(room, &member))
                .await;
            if let Err(e) = dropped {
                // A stale entry only costs the reaper a refused operation.
                warn!(error = %e, "a node member set was not updated");
            }
        }
        Ok(match kind {
            "admit" => LogOutcome::Admitted(placed, members),
            "resume" => {
                let member = match &bus.event {
                    RoomEvent::Presence(p) => Some(p.member().clone()),
                    _ => None,
                };
                match (resumed, member) {
                    (Some(s), Some(member)) => {
                        let info = MemberInfo {
                            member,
                            at: s.at,
                            profile: s.profile,
                        };
                        self.local
                            .lock()
                            .insert((room.clone(), info.member.clone()), info.clone());
                        LogOutcome::Resumed(placed, info, members)
                    }
                    _ => LogOutcome::Refused,
                }
            }
            _ => LogOutcome::Placed(placed),
        })
    }

    async fn fetch_now(&self, room: &RoomId, after: Pos, before: Pos) -> Result<Fetched, Error> {
        let keys = log_keys(room, None);
        let (epoch, evicted): (Option<String>, Option<String>) = self
            .client
            .hmget(keys[1].clone(), vec!["epoch", "evicted"])
            .await?;
        let mut fetched = Fetched {
            events: Vec::new(),
            epoch: epoch.unwrap_or_default(),
            evicted: evicted.and_then(|e| e.parse().ok()).unwrap_or(0),
        };
        if before <= after + 1 {
            return Ok(fetched);
        }
        let entries: Vec<(String, HashMap<String, Value>)> = self
            .client
            .xrange_values(
                keys[2].clone(),
                format!("{}-0", after + 1),
                format!("{}-9", before - 1),
                None,
            )
            .await?;
        for (id, fields) in entries {
            if let Some(bus) = decode_log_entry(&id, &fields, &fetched.epoch) {
                fetched.events.push(bus);
            }
        }
        Ok(fetched)
    }
}

impl RedisCluster {
    /// Publishes again the room's logged events with `after < pos < before`.
    async fn republish(&self, room: &RoomId, after: Pos, before: Pos) -> Result<(), Error> {
        let fetched = self.fetch_now(room, after, before).await?;
        for bus in fetched.events {
            match bus.encode() {
                Ok(bytes) => self.bus.publish(room, bytes),
                Err(e) => warn!(error = %e, "logged event not encodable"),
            }
        }
        Ok(())
    }

    /// Publishes again the last `UNSURE_TAIL` events of each room with an unanswered
    /// operation; a room whose tail could not be read stays for the next pass.
    async fn republish_unsure(&self) {
        let rooms: Vec<RoomId> = self.unsure.lock().drain().collect();
        for room in rooms {
            let last: Result<Option<Pos>, Error> =
                self.client.hget(room_part(&room, "state"), "pos").await;
            let done = match last {
                Ok(None) => true, // the room is gone: nothing to deliver
                Ok(Some(last)) => self
                    .republish(&room, last.saturating_sub(UNSURE_TAIL), last + 1)
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            if !done {
                self.unsure.lock().insert(room);
            }
        }
    }

    /// Notes a room whose operation got no answer (see `unsure`).
    fn note_unsure(&self, room: &RoomId) {
        let mut unsure = self.unsure.lock();
        if unsure.len() < UNSURE_ROOMS {
            unsure.insert(room.clone());
        } else {
            warn!("too many rooms with unanswered operations: one is left to its next event");
        }
    }
}

/// Publishes the tails of rooms with unanswered operations once Redis answers again.
async fn republish_loop(cluster: Arc<RedisCluster>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        if cluster.up.load(Ordering::SeqCst) && !cluster.unsure.lock().is_empty() {
            cluster.republish_unsure().await;
        }
    }
}

/// The log script's answer to an operation, decoded: what `run_log` acts on.
#[derive(Debug)]
pub enum LogReply {
    /// `full`: the room is full (admission).
    Full,
    /// `refused`: no such member or session.
    Refused,
    /// Placed (`ok`), or found in the log already (`dup`).
    Placed {
        /// Where.
        placed: Placed,
        /// `admit` and `resume`: the room's members, in join order, each with its node.
        members: Vec<(MemberInfo, String)>,
        /// `resume`: the resumed member's entry in the room hash, if it reads.
        resumed: Option<StoredMember>,
    },
}

/// Decodes the log script's reply to an operation of `kind` (`event`, `admit`, `away`,
/// `remove`, `resume`; see `lua/log.lua`). Pure, so the fuzz target runs it on any reply:
/// the store is shared with other nodes, and what it hands back is not taken on trust.
pub fn decode_log_reply(kind: &str, reply: &[Value]) -> LogReply {
    let text = |i: usize| reply.get(i).and_then(|v| v.as_string()).unwrap_or_default();
    let number = |i: usize| text(i).parse::<u64>().unwrap_or(0);
    let status = text(0);
    if status == "full" {
        return LogReply::Full;
    }
    if status == "refused" {
        return LogReply::Refused;
    }
    let placed = Placed {
        epoch: Arc::from(text(1).as_str()),
        pos: number(2),
        ts: number(3),
        duplicate: status == "dup",
    };
    let pairs = |from: usize| -> Vec<(String, String)> {
        // A reply shorter than the script writes lists nobody (slicing it would panic the
        // log task, and with it every room's log on this node).
        let rest = reply.get(from..).unwrap_or_default();
        let flat: Vec<String> = rest.iter().filter_map(Value::as_string).collect();
        flat.chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect()
    };
    let (members, resumed) = if placed.duplicate {
        (Vec::new(), None)
    } else {
        match kind {
            "admit" => (all_members(pairs(4)), None),
            "resume" => match serde_json::from_str::<StoredMember>(&text(4)).ok() {
                Some(stored) => (all_members(pairs(5)), Some(stored)),
                None => (Vec::new(), None),
            },
            _ => (Vec::new(), None),
        }
    };
    LogReply::Placed {
        placed,
        members,
        resumed,
    }
}

/// Every member in a room hash's entries with the node holding it, in join order.
fn all_members(stored: Vec<(String, String)>) -> Vec<(MemberInfo, String)> {
    let mut members: Vec<(MemberInfo, String)> = stored
        .into_iter()
        .filter_map(|(member, json)| {
            let s: StoredMember = serde_json::from_str(&json).ok()?;
            Some((
                MemberInfo {
                    member: MemberId::new(member).ok()?,
                    at: s.at,
                    profile: s.profile,
                },
                s.node,
            ))
        })
        .collect();
    members.sort_by_key(|(m, _)| m.at);
    members
}

/// One entry of a room's log stream (id `<pos>-<n>`, fields `t`: time, `e`: the encoded
/// event) as the event it holds, placed at its position in `epoch`; `None` if it holds
/// none. Pure, for `fetch_now` and the fuzz target.
pub fn decode_log_entry(
    id: &str,
    fields: &HashMap<String, Value>,
    epoch: &str,
) -> Option<BusEvent> {
    let pos: Pos = id
        .split('-')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let ts: u64 = fields.get("t").and_then(Value::as_u64).unwrap_or(0);
    let bytes = fields.get("e").and_then(Value::as_bytes)?;
    let mut bus = BusEvent::decode(bytes).ok()?;
    bus.event.place(pos, ts);
    bus.epoch = epoch.to_owned();
    Some(bus)
}

async fn log_loop(cluster: Arc<RedisCluster>, mut jobs: mpsc::Receiver<LogJob>) {
    while let Some(job) = jobs.recv().await {
        let result = cluster.run_log(&job.room, job.op, job.hint).await;
        match result {
            Ok(outcome) => {
                cluster.set_up(true);
                (job.done)(Ok(outcome));
            }
            Err(e) => {
                warn!(error = %e, "room log operation failed");
                cluster.note_unsure(&job.room);
                cluster.set_up(false);
                (job.done)(Err(Unavailable));
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
        match self.bus.name() {
            "redis" => "redis",
            "kafka" => "redis+kafka",
            _ => "redis+memory",
        }
    }

    fn node_id(&self) -> &str {
        &self.node
    }

    fn room_opened(&self, room: &RoomId) -> ClusterFuture<'_, Result<(), Unavailable>> {
        self.bus.open(room)
    }

    fn room_closed(&self, room: &RoomId) {
        self.bus.close(room);
    }

    fn logged(&self) -> bool {
        true
    }

    fn log(&self, room: &RoomId, op: LogOp, hint: LogHint, done: LogDone) {
        let job = LogJob {
            room: room.clone(),
            op,
            hint,
            done,
        };
        let lane = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::hash::DefaultHasher::new();
            room.hash(&mut hasher);
            hasher.finish() as usize % self.log_jobs.len()
        };
        if let Err(e) = self.log_jobs[lane].try_send(job) {
            let job = match e {
                mpsc::error::TrySendError::Full(j) | mpsc::error::TrySendError::Closed(j) => j,
            };
            (job.done)(Err(Unavailable));
        }
    }

    fn fetch(
        &self,
        room: &RoomId,
        after: Pos,
        before: Pos,
    ) -> ClusterFuture<'_, Result<Fetched, Unavailable>> {
        let room = room.clone();
        Box::pin(async move {
            self.fetch_now(&room, after, before).await.map_err(|e| {
                warn!(error = %e, "reading a room log failed");
                Unavailable
            })
        })
    }

    fn dependencies(&self) -> Vec<(&'static str, bool)> {
        let mut deps = vec![("redis", self.up.load(Ordering::SeqCst))];
        if self.bus.name() != "redis" {
            deps.push((self.bus.name(), self.bus.is_up()));
        }
        deps
    }

    fn shutdown(&self) -> ClusterFuture<'_, ()> {
        Box::pin(async move {
            // Let queued events go out first (bounded wait).
            let _ = tokio::time::timeout(Duration::from_secs(1), self.bus.flush()).await;
            // The members stay registered, away (the server marked them so before this):
            // once this node's liveness is gone, another node takes them over and they
            // leave when the grace runs out, unless they resumed elsewhere.
            let _: Result<(), _> = self.client.del(node_key(&self.node)).await;
        })
    }
}

/// Redis pub/sub as the bus: one channel per room (`streamchat:{<room>}:bus`), its own
/// two connections (one publishes, in order, from a bounded queue; one subscribes). On a
/// Redis Cluster the channels are sharded (`SPUBLISH`/`SSUBSCRIBE`): an event goes to the
/// shard that owns its room's slot, and only the nodes subscribed there receive it, where
/// classic pub/sub would copy every event to every shard of the cluster.
pub struct RedisBus {
    subscriber: SubscriberClient,
    sharded: bool,
    publishes: mpsc::Sender<(RoomId, Vec<u8>)>,
    up: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").finish_non_exhaustive()
    }
}

impl RedisBus {
    /// Connects to `url` and hands the events of the rooms it opens in to `inbound`.
    pub async fn connect(url: &str, inbound: Inbox) -> Result<Arc<Self>, RedisSetupError> {
        let builder = builder(url)?;
        let publisher = builder
            .build()
            .map_err(|e| RedisSetupError(e.to_string()))?;
        let subscriber = builder
            .build_subscriber_client()
            .map_err(|e| RedisSetupError(e.to_string()))?;
        connected(url, async {
            publisher.init().await?;
            subscriber.init().await?;
            Ok(())
        })
        .await?;
        let (publishes, queue) = mpsc::channel(OUTGOING_QUEUE);
        let up = Arc::new(AtomicBool::new(true));
        let sharded = publisher.client_config().server.is_clustered();
        if sharded {
            tokio::spawn(keep_shard_subscriptions(
                subscriber.clone(),
                inbound.clone(),
            ));
        } else {
            let _resubscribe = subscriber.manage_subscriptions();
            tokio::spawn(read_back_after_reconnects(
                subscriber.clone(),
                inbound.clone(),
            ));
        }
        tokio::spawn(publish_loop(publisher, queue, up.clone(), sharded));
        tokio::spawn(listen_loop(subscriber.message_rx(), inbound));
        Ok(Arc::new(Self {
            subscriber,
            sharded,
            publishes,
            up,
        }))
    }
}

impl Bus for RedisBus {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn open(&self, room: &RoomId) -> ClusterFuture<'_, Result<(), Unavailable>> {
        let channel = bus_channel(room);
        Box::pin(async move {
            let subscribed = if self.sharded {
                self.subscriber.ssubscribe(channel).await
            } else {
                self.subscriber.subscribe(channel).await
            };
            subscribed.map_err(|_| Unavailable)
        })
    }

    fn close(&self, room: &RoomId) {
        let subscriber = self.subscriber.clone();
        let channel = bus_channel(room);
        let sharded = self.sharded;
        tokio::spawn(async move {
            let _ = if sharded {
                subscriber.sunsubscribe(channel).await
            } else {
                subscriber.unsubscribe(channel).await
            };
        });
    }

    fn publish(&self, room: &RoomId, bytes: Vec<u8>) {
        if self.publishes.try_send((room.clone(), bytes)).is_err() {
            tracing::debug!("redis publish queue full: an event is left to the log");
        }
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    fn flush(&self) -> ClusterFuture<'_, ()> {
        Box::pin(async move {
            while self.publishes.capacity() < self.publishes.max_capacity() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }
}

async fn publish_loop(
    publisher: Client,
    mut queue: mpsc::Receiver<(RoomId, Vec<u8>)>,
    up: Arc<AtomicBool>,
    sharded: bool,
) {
    while let Some((room, bytes)) = queue.recv().await {
        let channel = bus_channel(&room);
        let sent: Result<(), Error> = if sharded {
            publisher.spublish(channel, bytes).await
        } else {
            publisher.publish(channel, bytes).await
        };
        up.store(sent.is_ok(), Ordering::SeqCst);
    }
}

/// Keeps a node's sharded subscriptions through failovers. A shard channel is subscribed
/// on the master that owns its slot; when that master dies, the subscription dies with
/// it, and subscribing again only works once a replica has taken the slot over, which
/// can take the cluster's node timeout. fred subscribes again once, on reconnection,
/// which can come before the failover is over: then the room would go deaf for good.
/// So after any sign of trouble (a reconnection, a change of the cluster's layout, an
/// error), every tracked shard channel is subscribed again, slot by slot, once a second
/// until one whole pass succeeds (at most a minute; the next trouble starts it again).
/// Events published meanwhile are in the room's log: the first event heard after the
/// gap makes the registry fetch what was missed.
async fn keep_shard_subscriptions(subscriber: SubscriberClient, inbound: Inbox) {
    let mut reconnects = subscriber.reconnect_rx();
    let mut changes = subscriber.cluster_change_rx();
    let mut errors = subscriber.error_rx();
    loop {
        let trouble = tokio::select! {
            r = reconnects.recv() => r.is_ok() || matches!(r, Err(tokio::sync::broadcast::error::RecvError::Lagged(_))),
            r = changes.recv() => r.is_ok() || matches!(r, Err(tokio::sync::broadcast::error::RecvError::Lagged(_))),
            r = errors.recv() => r.is_ok() || matches!(r, Err(tokio::sync::broadcast::error::RecvError::Lagged(_))),
        };
        if !trouble {
            return; // the client is gone
        }
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let channels: Vec<String> = subscriber
                .tracked_shard_channels()
                .into_iter()
                .map(|c| c.to_string())
                .collect();
            let mut all = true;
            for channel in channels {
                // One channel per command: they belong to different slots.
                if subscriber.ssubscribe(channel).await.is_err() {
                    all = false;
                }
            }
            if all {
                inbound.mark_missed(); // what was published while deaf is read back
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One Redis: fred subscribes again after a reconnection; what was published while the
/// subscriber was away is read back from the log (once at once, once after the
/// subscriptions are surely back).
async fn read_back_after_reconnects(subscriber: SubscriberClient, inbound: Inbox) {
    let mut reconnects = subscriber.reconnect_rx();
    loop {
        match reconnects.recv().await {
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                inbound.mark_missed();
                tokio::time::sleep(Duration::from_secs(1)).await;
                inbound.mark_missed();
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

async fn listen_loop(
    mut messages: tokio::sync::broadcast::Receiver<fred::types::Message>,
    inbound: Inbox,
) {
    loop {
        match messages.recv().await {
            Ok(message) => {
                if let Some(bytes) = message.value.as_bytes() {
                    crate::bus::hand_in(&inbound, bytes, "redis bus message");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                warn!(missed = n, "bus listener lagged: the log fills the gap");
                inbound.mark_missed();
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_log_replies_are_read_not_panicked_on() {
        // Found by fuzz/cluster_events: `admit` with fewer than 4 values panicked.
        for reply in [
            vec![],
            vec![Value::from("ok")],
            vec![Value::from("ok"), Value::from("e"), Value::from(3)],
        ] {
            match decode_log_reply("admit", &reply) {
                LogReply::Placed { members, .. } => assert!(members.is_empty()),
                other => panic!("{other:?}"),
            }
        }
        let stored = r#"{"node":"n","at":5,"profile":"cA"}"#;
        let resume = vec![
            Value::from("ok"),
            Value::from("e"),
            Value::from(3),
            Value::from(4),
            Value::from(stored),
        ];
        match decode_log_reply("resume", &resume) {
            LogReply::Placed {
                placed,
                members,
                resumed,
            } => {
                assert_eq!((placed.pos, placed.ts), (3, 4));
                assert!(members.is_empty());
                assert_eq!(resumed.map(|s| s.at), Some(5));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_log_reply("admit", &[Value::from("full")]),
            LogReply::Full
        ));
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted("redis://:hunter2@127.0.0.1:6379"),
            "redis://…@127.0.0.1:6379"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
