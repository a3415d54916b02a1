// Resumable sessions across nodes: one room log for the whole cluster (docs/reliability.md).
//
// Three nodes over one Redis. Members on different nodes see the room's events in one
// order, each at the position its sender was acknowledged with. A member whose node is
// killed (SIGKILL) or stopped (SIGTERM) resumes on another node with its token and gets
// every message it missed, once, in order; the others see it reconnecting and back,
// never leaving. Forged, old and foreign tokens are refused and change nothing. The
// Redis holding the window keeps nothing on disk.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startServer } from '../harness.mjs';
import { Peer, assertError, assertOk, indexOf, indexed, openSocket, profile, roomId, sleep, stopServer } from '../node/helpers.mjs';
import { until } from './cluster-helpers.mjs';

const ARGS = ['--messages-per-second', 1000, '--message-burst', 1000, '--resume-grace-secs', 20];

describe('one room log across three nodes', { timeout: 120_000 }, () => {
  let redis;
  const nodes = [];
  const peers = [];
  const startNode = async () => {
    const node = await startServer(['--redis-url', redis.url, ...ARGS]);
    nodes.push(node);
    return node;
  };
  const peerOn = async (node) => { const p = new Peer(await openSocket(node.url)); peers.push(p); return p; };

  before(async () => {
    redis = await startRedis();
    for (let i = 0; i < 3; i++) await startNode();
  });
  after(async () => {
    for (const p of peers) p.close();
    for (const n of nodes) await stopServer(n);
    await redis?.stop();
  });

  it('keeps nothing on disk: the Redis holding the window has no persistence', async () => {
    // redis-cli prints the empty value as an empty line, which `cli` drops.
    assert.deepEqual(await redis.cli('CONFIG', 'GET', 'save'), ['save']);
    assert.deepEqual(await redis.cli('CONFIG', 'GET', 'appendonly'), ['appendonly', 'no']);
  });

  it('members on three nodes see every message at the position its sender was told, in one order', async () => {
    const room = roomId();
    const members = [];
    for (const node of nodes.slice(0, 3)) {
      const p = await peerOn(node);
      await p.join(room);
      members.push(p);
    }
    await until(() => members.every((m) => m.events('presence', (e) => e.room === room && e.kind === 'join').length >= members.length - 1 - members.indexOf(m)), { what: 'everyone to see the later joins' });
    const N = 30;
    const acks = new Map();
    await Promise.all(members.map(async (m, who) => {
      for (let i = 0; i < N; i++) {
        const ack = await m.send(room, indexed(who * 1000 + i));
        acks.set(who * 1000 + i, ack.pos);
      }
    }));
    for (const [who, m] of members.entries()) {
      const expected = N * (members.length - 1);
      await until(() => m.events('msg', (e) => e.room === room).length >= expected, { what: `member ${who} to get ${expected} messages` });
      const got = m.events('msg', (e) => e.room === room);
      assert.equal(got.length, expected, 'each once');
      for (const e of got) assert.equal(e.pos, acks.get(indexOf(e.data)), 'at the position its sender was acknowledged with');
      const positions = m.events('presence', (e) => e.room === room).concat(got).map((e) => e.pos);
      const inOrder = m.log.filter((e) => ['msg', 'presence'].includes(e.event) && e.payload.room === room).map((e) => e.payload.pos);
      assert.deepEqual(inOrder, [...inOrder].sort((a, b) => a - b), `member ${who} received in position order`);
      assert.equal(new Set(positions).size, positions.length, 'no position twice');
    }
  });

  for (const [how, signal] of [['killed (SIGKILL)', 'SIGKILL'], ['stopped (SIGTERM, a rolling deploy)', 'SIGTERM']]) {
    it(`a member whose node is ${how} resumes on another node: every missed message once, in order; nobody sees it leave`, async () => {
      const room = roomId();
      const victim = await startNode();
      const home = nodes[0];
      const elsewhere = nodes[1];
      const alice = await peerOn(home);
      await alice.join(room);
      const bob = await peerOn(victim);
      const joined = await bob.join(room, profile());
      const bobId = bob.id;
      await alice.waitFor('presence', (p) => p.kind === 'join' && p.member === bobId);
      await alice.send(room, indexed(1));
      const first = await bob.waitFor('msg', (m) => indexOf(m.data) === 1);
      if (signal === 'SIGTERM') {
        await stopServer(victim, 'SIGTERM');
      } else {
        victim.proc.kill('SIGKILL');
        await victim.exited;
      }
      // While Bob is gone, Alice goes on.
      for (let i = 2; i <= 4; i++) await alice.send(room, indexed(i));
      const again = new Peer(await openSocket(elsewhere.url));
      peers.push(again);
      const ack = await again.call('resume', { room, member: bobId, token: joined.token, epoch: joined.epoch, pos: first.pos });
      assertOk(ack, 'resume on another node');
      assert.equal(ack.member, bobId, 'the same member');
      assert.notEqual(ack.token, joined.token, 'a fresh token');
      await until(() => again.events('msg', (m) => m.room === room).length >= 3, { what: 'the missed messages' });
      await again.send(room, indexed(5));
      await alice.waitFor('msg', (m) => indexOf(m.data) === 5);
      await alice.send(room, indexed(6));
      await again.waitFor('msg', (m) => indexOf(m.data) === 6);
      const got = again.events('msg', (m) => m.room === room).map((m) => indexOf(m.data));
      assert.deepEqual(got, [2, 3, 4, 6], 'each missed message once, in order, then live traffic');
      const about = alice.events('presence', (p) => p.room === room && p.member === bobId).map((p) => p.kind);
      assert.ok(!about.includes('leave'), `Alice never saw Bob leave: ${about}`);
      assert.equal(about.at(-1), 'back', `Alice saw Bob back: ${about}`);
      // The old token is dead; Bob's new one works only for Bob in this room.
      const old = new Peer(await openSocket(elsewhere.url));
      peers.push(old);
      assertError(await old.call('resume', { room, member: bobId, token: joined.token, epoch: joined.epoch, pos: 0 }), 'resume_failed');
      assertError(await old.call('resume', { room: roomId(), member: bobId, token: ack.token, epoch: joined.epoch, pos: 0 }), 'resume_failed');
      assertError(await old.call('resume', { room, member: alice.id, token: ack.token, epoch: joined.epoch, pos: 0 }), 'resume_failed');
      // ... and nobody else was affected.
      await alice.send(room, indexed(7));
      await again.waitFor('msg', (m) => indexOf(m.data) === 7);
      assert.ok(alice.connected && again.connected);
    });
  }

  it('a resent message (same id) after a resume on another node is acknowledged once and delivered once', async () => {
    const room = roomId();
    const victim = await startNode();
    const alice = await peerOn(nodes[0]);
    await alice.join(room);
    const bob = await peerOn(victim);
    const joined = await bob.join(room);
    const bobId = bob.id;
    const sent = await bob.send(room, indexed(42), { id: 'bob-42' });
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const again = new Peer(await openSocket(nodes[1].url));
    peers.push(again);
    assertOk(await again.call('resume', { room, member: bobId, token: joined.token, epoch: joined.epoch, pos: joined.pos }));
    const resent = await again.send(room, indexed(42), { id: 'bob-42' });
    assert.equal(resent.duplicate, true);
    assert.equal(resent.pos, sent.pos, 'the first copy\'s position');
    await again.send(room, indexed(43), { id: 'bob-43' });
    await alice.waitFor('msg', (m) => indexOf(m.data) === 43);
    await sleep(100);
    assert.deepEqual(alice.events('msg', (m) => m.room === room).map((m) => indexOf(m.data)), [42, 43]);
  });
});
