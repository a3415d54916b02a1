// Tier 3: nodes sharing rooms with presence in a real Redis and room events carried by
// a real Kafka-protocol broker (tansu), on loopback; including a broker restart.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, startRedis, startKafka } from '../harness.mjs';
import { Peer, openSocket, roomId, fileId, indexed, indexOf, toBuf, assertOk, stopServer, sleep } from '../node/helpers.mjs';
import { health, until } from './cluster-helpers.mjs';

describe('two nodes over Redis + Kafka', { timeout: 120_000 }, () => {
  let redis;
  let kafka;
  let topic;
  const nodes = [];
  const peers = [];
  const peerOn = async (node) => { const p = new Peer(await openSocket(node.url)); peers.push(p); return p; };
  const nodeArgs = () => ['--redis-url', redis.url, '--kafka-brokers', kafka.brokers, '--kafka-topic', topic,
    '--messages-per-second', 1000, '--message-burst', 1000];

  before(async () => {
    redis = await startRedis();
    kafka = await startKafka();
    topic = `streamchat-test-${Date.now()}`;
    nodes.push(await startServer(nodeArgs(), { timeoutMs: 20_000 }));
    nodes.push(await startServer(nodeArgs(), { timeoutMs: 20_000 }));
  });
  after(async () => {
    for (const p of peers) p.close();
    for (const n of nodes) await stopServer(n);
    await kafka?.stop();
    await redis?.stop();
  });

  it('reports both dependencies on /health', async () => {
    const h = await health(nodes[0]);
    assert.equal(h.status, 200);
    assert.equal(h.body.backend, 'redis+kafka');
    assert.deepEqual(h.body.dependencies, { redis: 'up', kafka: 'up' });
  });

  it('members on different nodes chat, with presence, direct messages and chunks in order', async () => {
    const room = roomId();
    const alice = await peerOn(nodes[0]);
    const bob = await peerOn(nodes[1]);
    await alice.join(room);
    const ack = await bob.join(room);
    assert.deepEqual(ack.members.map((m) => m.member), [alice.id]);
    await alice.waitFor('presence', (p) => p.kind === 'join' && p.member === bob.id, { ms: 10_000 });
    for (let i = 0; i < 30; i++) await alice.send(room, indexed(i));
    const got = await bob.waitCount('msg', 30, (m) => m.from === alice.id, { ms: 10_000 });
    assert.deepEqual(got.map((m) => indexOf(m.data)), [...Array(30).keys()], 'per-room order through Kafka');
    await bob.send(room, Buffer.from('direct'), { to: alice.id });
    const direct = await alice.waitFor('msg', (m) => m.from === bob.id, { ms: 10_000 });
    assert.equal(toBuf(direct.data).toString(), 'direct');
    const file = fileId();
    // Chunks near the default 1 MiB limit must fit the explicit Kafka message settings.
    for (let seq = 0; seq < 4; seq++) assertOk(await alice.call('chunk', { room, file, seq, data: indexed(seq, 1_000_000) }));
    const chunks = await bob.waitCount('chunk', 4, (c) => c.file === file, { ms: 15_000 });
    assert.deepEqual(chunks.map((c) => c.seq), [0, 1, 2, 3]);
    assert.deepEqual(chunks.map((c) => toBuf(c.data).length), [1_000_000, 1_000_000, 1_000_000, 1_000_000]);
    const bobId = bob.id;
    bob.close();
    const left = await alice.waitFor('presence', (p) => p.kind === 'leave' && p.member === bobId, { ms: 10_000 });
    assert.equal(left.reason, 'disconnected');
  });

  it('the broker restarts: nodes report 503, then recover by themselves and chat resumes', async () => {
    const room = roomId();
    const alice = await peerOn(nodes[0]);
    const bob = await peerOn(nodes[1]);
    await alice.join(room);
    await bob.join(room);
    await kafka.stop();
    await until(async () => (await health(nodes[0])).status === 503, { what: 'a 503 while the broker is down' });
    assert.equal((await health(nodes[0])).body.dependencies.kafka, 'down');
    await alice.waitFor('notice', (n) => n.code === 'unavailable', { ms: 10_000 });
    kafka = await startKafka({ port: kafka.port });
    await until(async () => (await health(nodes[0])).status === 200 && (await health(nodes[1])).status === 200,
      { ms: 30_000, what: 'both nodes healthy again' });
    await until(async () => {
      await alice.send(room, Buffer.from('after restart'));
      await sleep(300);
      return bob.events('msg', (m) => m.from === alice.id && toBuf(m.data).toString() === 'after restart').length > 0;
    }, { ms: 30_000, what: 'cross-node delivery through the new broker' });
  });
});
