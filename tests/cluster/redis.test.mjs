// Tier 3: several streamchat nodes sharing rooms over a real Redis, on loopback.
// Clients on different nodes chat as if there were one server; the members of a node
// killed with SIGKILL are away at once and leave when the grace runs out; a Redis restart
// is survived (messages are refused, not lost, while it is down); nothing of an emptied
// room remains in Redis beyond its window.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startRedis, startRedisCluster } from '../harness.mjs';
import {
  Peer, openSocket, roomId, fileId, profile, bytes, indexed, indexOf, toBuf, assertOk, assertError, stopServer, sleep,
} from '../node/helpers.mjs';
import { connectTo as connect, health, until } from './cluster-helpers.mjs';

const GRACE_SECS = 3;
const WINDOW_SECS = 4;
const msgsFrom = (peer, room, from) => peer.events('msg', (m) => m.room === room && m.from === from);

// The same tier on one Redis and on a Redis Cluster (every key of a room in the room's
// slot, room events over sharded pub/sub).
for (const [store, startStore] of [['one Redis', startRedis], ['a Redis Cluster of 3 masters with a replica each', startRedisCluster]]) {
describe(`two and three nodes over ${store}`, { timeout: 120_000 }, () => {
  let redis;
  const nodes = [];
  const peers = [];
  // Every node of the cluster with the same grace: whichever node reaps a dead one
  // applies its own (the SIGKILL test below failed whenever a node started with the
  // default 20 s won the reap).
  const startNode = async (extra = []) => {
    const node = await startServer(['--redis-url', redis.url, '--messages-per-second', 1000, '--message-burst', 1000,
      '--resume-grace-secs', GRACE_SECS, '--resume-window-secs', WINDOW_SECS, ...extra]);
    nodes.push(node);
    return node;
  };
  const peerOn = async (node) => { const p = await connect(node); peers.push(p); return p; };

  before(async () => {
    redis = await startStore();
    await startNode();
    await startNode();
    await startNode();
  });
  after(async () => {
    for (const p of peers) p.close();
    for (const n of nodes) await stopServer(n);
    await redis?.stop();
  });

  it('members on different nodes see each other, with profiles, and chat both ways', async () => {
    const [a, b] = nodes;
    const room = roomId();
    const alice = await peerOn(a);
    const bob = await peerOn(b);
    const aliceProfile = profile();
    const bobProfile = profile();
    await alice.join(room, aliceProfile);
    const ack = await bob.join(room, bobProfile);
    assert.deepEqual(ack.members.map((m) => [m.member, m.profile]), [[alice.id, aliceProfile]], 'bob sees alice, on another node');
    const joined = await alice.waitFor('presence', (p) => p.kind === 'join' && p.member === bob.id);
    assert.equal(joined.profile, bobProfile);

    for (let i = 0; i < 20; i++) await alice.send(room, indexed(i));
    for (let i = 0; i < 20; i++) await bob.send(room, indexed(100 + i));
    await bob.waitCount('msg', 20, (m) => m.from === alice.id);
    await alice.waitCount('msg', 20, (m) => m.from === bob.id);
    assert.deepEqual(msgsFrom(bob, room, alice.id).map((m) => indexOf(m.data)), [...Array(20).keys()], 'in order');
    assert.deepEqual(msgsFrom(alice, room, bob.id).map((m) => indexOf(m.data)), [...Array(20).keys()].map((i) => 100 + i));
    assert.equal(alice.events('msg', (m) => m.from === alice.id).length, 0, 'no echo to the sender');
    if (redis.masterOf) {
      // Sharded pub/sub: both nodes listen on the room's channel at the shard that owns
      // the room's slot, and no classic channel carries it.
      const channel = `streamchat:{${room}}:bus`;
      const owner = await redis.masterOf(channel);
      const [, subscribers] = await redis.nodeCli(owner.port, 'PUBSUB', 'SHARDNUMSUB', channel);
      assert.equal(subscribers, '2', 'two nodes subscribed to the room on its shard');
      const classic = (await Promise.all(redis.nodes.map((n) => redis.nodeCli(n.port, 'PUBSUB', 'CHANNELS', '*')))).flat();
      assert.deepEqual(classic, [], 'no classic pub/sub channel');
    }
  });

  it('a third node joins the same room; direct messages and file chunks cross nodes', async () => {
    const [a, b, c] = nodes;
    const room = roomId();
    const alice = await peerOn(a);
    const bob = await peerOn(b);
    const carol = await peerOn(c);
    await alice.join(room);
    await bob.join(room);
    const ack = await carol.join(room);
    assert.deepEqual(ack.members.map((m) => m.member).sort(), [alice.id, bob.id].sort());
    await alice.waitFor('presence', (p) => p.kind === 'join' && p.member === carol.id);
    await bob.waitFor('presence', (p) => p.kind === 'join' && p.member === carol.id);

    await alice.send(room, Buffer.from('for carol only'), { to: carol.id });
    const direct = await carol.waitFor('msg', (m) => m.from === alice.id);
    assert.equal(toBuf(direct.data).toString(), 'for carol only');
    assert.equal(direct.to, carol.id);
    const err = await alice.call('msg', { room, data: bytes(4), to: 'nobody-at-all' });
    assertError(err, 'not_member');

    const file = fileId();
    for (let seq = 0; seq < 40; seq++) {
      assertOk(await bob.call('chunk', { room, file, seq, data: indexed(seq, 4096) }));
    }
    for (const p of [alice, carol]) {
      const chunks = await p.waitCount('chunk', 40, (x) => x.file === file, { ms: 10_000 });
      assert.deepEqual(chunks.map((x) => x.seq), [...Array(40).keys()], 'chunks in order');
      assert.deepEqual(chunks.map((x) => indexOf(x.data)), [...Array(40).keys()], 'chunk bytes intact');
    }
    // Bob sent to the room: nobody got the direct message but carol.
    assert.equal(bob.events('msg', (m) => m.from === alice.id).length, 0);
  });

  it('room_full counts members on every node', async () => {
    const small = [await startNode(['--max-members-per-room', 2]), await startNode(['--max-members-per-room', 2])];
    const room = roomId();
    const p1 = await peerOn(small[0]);
    const p2 = await peerOn(small[1]);
    const p3 = await peerOn(small[0]);
    await p1.join(room);
    await p2.join(room);
    assertError(await p3.call('join', { room, profile: profile() }), 'room_full');
  });

  it('leaving and disconnecting are seen across nodes, and nothing of the room stays in Redis', async () => {
    const [a, b] = nodes;
    const room = roomId();
    const alice = await peerOn(a);
    const bob = await peerOn(b);
    const carol = await peerOn(b);
    await alice.join(room);
    await bob.join(room);
    await carol.join(room);
    assert.ok((await redis.cli('HLEN', `streamchat:{${room}}:members`))[0] === '3', 'three members in Redis');
    await bob.leave(room);
    const left = await alice.waitFor('presence', (p) => p.kind === 'leave' && p.member === bob.id);
    assert.equal(left.reason, 'left');
    const carolId = carol.id; // socket.io-client forgets its id once closed
    carol.close();
    const gone = await alice.waitFor('presence', (p) => p.kind === 'leave' && p.member === carolId);
    assert.equal(gone.reason, 'disconnected');
    alice.close();
    await until(async () => (await redis.cli('--scan', '--pattern', `streamchat:{${room}}:*`)).length === 0,
      { what: 'the room to vanish from Redis' });
  });

  it('a node killed with SIGKILL: its members are away, then leave everywhere as timeout once the grace runs out', async () => {
    const victim = await startNode();
    const survivor = nodes[0];
    const room = roomId();
    const alice = await peerOn(survivor);
    const doomed = await peerOn(victim);
    await alice.join(room);
    await doomed.join(room);
    await alice.waitFor('presence', (p) => p.kind === 'join' && p.member === doomed.id);
    const doomedId = doomed.id; // socket.io-client forgets its id once disconnected
    // A failure prints the nodes' logs, the room's record, and where its keys are on each
    // Redis server.
    const dump = async () => {
      for (const n of nodes) process.stderr.write(`NODE ${n.port}\n${n.stderr()}\n`);
      const field = async (what) => (await redis.cli('HGETALL', `streamchat:{${room}}:${what}`)).join(' ');
      process.stderr.write(`ROOM members=${await field('members')} away=${await field('away')} state=${await field('state')}\n`);
      for (const n of redis.nodes ?? []) {
        if (n.proc.exitCode !== null || n.proc.signalCode !== null) continue;
        const keys = await redis.nodeCli(n.port, '--scan', '--pattern', `streamchat:*${room}*`);
        const role = (await redis.nodeCli(n.port, 'ROLE')).slice(0, 3).join(' ');
        process.stderr.write(`REDIS ${n.port} (${role}): ${keys.join(' ')}\n`);
      }
    };
    const killedAt = Date.now();
    victim.proc.kill('SIGKILL');
    // Liveness expires 6 s after the last refresh, and a key must stay missing 6 s more
    // before its node counts as dead (a Redis Cluster failover can expire a live node's).
    const away = await alice.waitFor('presence', (p) => p.kind === 'away' && p.member === doomedId, { ms: 18_000 });
    const left = await alice.waitFor('presence', (p) => p.kind === 'leave' && p.member === doomedId, { ms: 12_000 }).catch(async (e) => {
      await dump();
      throw e;
    });
    const tookMs = Date.now() - killedAt;
    assert.equal(left.reason, 'timeout');
    assert.ok(left.pos > away.pos, 'away, then leave');
    assert.ok(tookMs <= 16_000 + GRACE_SECS * 1000, `left after ${tookMs} ms`);
    alice.close();
    await until(async () => (await redis.cli('--scan', '--pattern', `streamchat:*${room}*`)).length === 0,
      // alice's disconnect: away for the grace, then the emptied room's log lasts the window
      { what: 'the dead node\'s room to vanish from Redis', ms: (GRACE_SECS + WINDOW_SECS + 3) * 1000 })
      .catch(async (e) => {
        await dump();
        throw new Error(`${e.message}; left: ${(await redis.cli('--scan', '--pattern', `streamchat:*${room}*`)).join(' ')}`);
      });
  });
});
}

describe('Redis stalls for longer than a node waits for it', { timeout: 60_000 }, () => {
  // A Redis that stops answering for a few seconds (a slow fork, a paused VM) and then
  // runs what was queued on its socket: the node gave up on those operations, so it
  // never published what they placed. Nothing comes after them in the room to show the
  // gap, and a resent message is answered as a duplicate.
  it('what Redis placed after the node gave up reaches everyone once: a message, then a leave with nothing after it', async () => {
    const redis = await startRedis();
    const a = await startServer(['--redis-url', redis.url]);
    const b = await startServer(['--redis-url', redis.url]);
    const peers = [];
    try {
      const room = roomId();
      const alice = new Peer(await openSocket(a.url));
      const carol = new Peer(await openSocket(a.url));
      const bob = new Peer(await openSocket(b.url));
      peers.push(alice, carol, bob);
      await alice.join(room);
      await carol.join(room);
      await bob.join(room);
      const carolId = carol.id;
      const text = 'sent while Redis stalled';
      const fromAlice = () => bob.events('msg', (m) => m.from === alice.id && toBuf(m.data).toString() === text);

      redis.proc.kill('SIGSTOP');
      const refused = await alice.call('msg', { room, data: Buffer.from(text), id: 'stalled-1' });
      assertError(refused, 'unavailable');
      assertOk(await carol.call('leave', { room }), 'leave');
      await sleep(2500); // both operations wait in Redis's socket; the node gave up on them
      redis.proc.kill('SIGCONT');

      // Redis runs both. The leave is the room's last event: bob sees it all the same.
      const left = await bob.waitFor('presence', (p) => p.kind === 'leave' && p.member === carolId, { ms: 10_000 });
      assert.equal(left.reason, 'left');
      // alice resends the message she has no ack for, as a client does: it was placed, so
      // it is acknowledged as a duplicate with its first position, and bob has it once.
      let again;
      await until(async () => {
        again = await alice.call('msg', { room, data: Buffer.from(text), id: 'stalled-1' });
        return again.ok;
      }, { ms: 10_000, what: 'the resent message to be acknowledged' });
      assert.equal(again.duplicate, true, 'Redis had placed it during the stall');
      await until(async () => fromAlice().length > 0, { ms: 5000, what: 'bob to get the message' });
      assert.ok(again.pos < left.pos, 'the message was placed before the leave');
      await sleep(500);
      assert.equal(fromAlice().length, 1, 'bob has it once');
    } finally {
      redis.proc.kill('SIGCONT');
      for (const p of peers) p.close();
      await stopServer(a);
      await stopServer(b);
      await redis.stop();
    }
  });
});

describe('Redis restarts', { timeout: 90_000 }, () => {
  it('nodes report 503 and notify clients, messages are refused (not lost) meanwhile, then everything recovers', async () => {
    let redis = await startRedis();
    const a = await startServer(['--redis-url', redis.url]);
    const b = await startServer(['--redis-url', redis.url]);
    const peers = [];
    try {
      const room = roomId();
      const alice = new Peer(await openSocket(a.url));
      const anne = new Peer(await openSocket(a.url));
      const bob = new Peer(await openSocket(b.url));
      peers.push(alice, anne, bob);
      await alice.join(room);
      await anne.join(room);
      await bob.join(room);
      assert.equal((await health(a)).status, 200);

      await redis.stop();
      await until(async () => (await health(a)).status === 503, { what: 'node a to report 503' });
      const h = await health(a);
      assert.equal(h.body.dependencies.redis, 'down');
      await alice.waitFor('notice', (n) => n.code === 'unavailable', { ms: 10_000 });

      // Every room event is positioned by the log in Redis: while it is down, a message
      // is refused (the client keeps it and sends it again), never half delivered.
      const refused = await alice.call('msg', { room, data: Buffer.from('not now') });
      assertError(refused, 'unavailable');

      redis = await startRedis({ port: redis.port });
      await until(async () => (await health(a)).status === 200 && (await health(b)).status === 200,
        { ms: 15_000, what: 'both nodes healthy again' });
      await alice.waitFor('notice', (n) => n.code === 'restored', { ms: 10_000 });
      // Presence was re-registered in the empty Redis.
      await until(async () => (await redis.cli('HLEN', `streamchat:{${room}}:members`))[0] === '3', { what: 'presence re-registered' });
      // Cross-node chat resumes.
      await until(async () => {
        await alice.send(room, Buffer.from('across again'));
        await sleep(200);
        return bob.events('msg', (m) => m.from === alice.id && toBuf(m.data).toString() === 'across again').length > 0;
      }, { ms: 15_000, what: 'cross-node delivery to resume' });
      await bob.send(room, Buffer.from('and back'));
      await alice.waitFor('msg', (m) => m.from === bob.id && toBuf(m.data).toString() === 'and back');
    } finally {
      for (const p of peers) p.close();
      await stopServer(a);
      await stopServer(b);
      await redis.stop();
    }
  });
});
