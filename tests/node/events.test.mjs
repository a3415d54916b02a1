// Every client→server event and its ack, and every server→client event, on one default server.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  Env, assertServerTime, barrier, bytes, fileId, isBinary, msgsIn, profile, roomId, toBuf,
} from './helpers.mjs';

const DEFAULT_LIMITS = {
  max_message_bytes: 65536,
  max_chunk_bytes: 1048576,
  max_file_chunks: 256,
  max_file_bytes: 256 * 1048576, // 256 MiB files by default (the file-sharing issue)
  max_members_per_room: 1000,
};

const pick = (obj, keys) => Object.fromEntries(keys.map((k) => [k, obj?.[k]]));
const memberView = (m) => pick(m, ['member', 'at', 'profile']);
const byMember = (a, b) => (a.member < b.member ? -1 : a.member > b.member ? 1 : 0);

describe('events and acks', { timeout: 60_000 }, () => {
  let env;
  before(async () => { env = await Env.start(); });
  afterEach(() => env.closePeers());
  after(() => env.stop());

  it('join acks {ok, member: socket.id, at, members: [], limits} for the first member', async () => {
    const [a] = await env.connectMany(1);
    const ack = await a.join(roomId());
    assert.equal(ack.member, a.id, 'ack.member is the connection\'s socket.id');
    assertServerTime(ack.at, 'ack.at');
    assert.deepEqual(ack.members, [], 'nobody else is present');
    assert.ok(ack.limits && typeof ack.limits === 'object', `ack.limits missing: ${JSON.stringify(ack)}`);
    assert.deepEqual(pick(ack.limits, Object.keys(DEFAULT_LIMITS)), DEFAULT_LIMITS);
  });

  it('presence join carries the profile to present members; joiners get every present member with profile', async () => {
    const room = roomId();
    const [a, b, c] = await env.connectMany(3);
    const [pa, pb, pc] = [profile(), profile(200), profile(1)];

    const ackA = await a.join(room, pa);
    const ackB = await b.join(room, pb);
    assert.equal(ackB.member, b.id);
    assert.deepEqual(ackB.members.map(memberView), [{ member: a.id, at: ackA.at, profile: pa }]);

    const seenByA = await a.waitFor('presence', (p) => p.member === b.id);
    assert.deepEqual(pick(seenByA, ['room', 'kind', 'member', 'at', 'profile']),
      { room, kind: 'join', member: b.id, at: ackB.at, profile: pb });

    const ackC = await c.join(room, pc);
    assert.deepEqual([...ackC.members].map(memberView).sort(byMember),
      [{ member: a.id, at: ackA.at, profile: pa }, { member: b.id, at: ackB.at, profile: pb }].sort(byMember),
      'a late joiner gets every present member with profile and joined-at');
    for (const p of [a, b]) {
      const seen = await p.waitFor('presence', (e) => e.member === c.id);
      assert.deepEqual(pick(seen, ['room', 'kind', 'member', 'at', 'profile']),
        { room, kind: 'join', member: c.id, at: ackC.at, profile: pc });
    }

    // Nobody is told about their own join, and the late joiner gets no presence for those already there.
    await barrier(room, a, [b, c]);
    await barrier(room, b, [a]);
    assert.deepEqual(a.events('presence').map((p) => p.member), [b.id, c.id]);
    assert.deepEqual(b.events('presence').map((p) => p.member), [c.id]);
    assert.deepEqual(c.events('presence'), []);
  });

  it('join of a room already joined is idempotent: ok with current members, no broadcast', async () => {
    const room = roomId();
    const [a, b] = await env.connectMany(2);
    const pa = profile();
    const ackA = await a.join(room, pa);
    const ackB = await b.join(room);
    await a.waitFor('presence', (p) => p.member === b.id);

    const again = await b.join(room);
    assert.equal(again.member, b.id);
    assert.deepEqual(again.members.map(memberView), [{ member: a.id, at: ackA.at, profile: pa }],
      'the repeated join lists the other members, not the joiner');

    await barrier(room, b, [a]);
    assert.equal(a.events('presence').length, 1, 'the repeated join broadcasts nothing');
    const [c] = await env.connectMany(1);
    const ackC = await c.join(room);
    assert.deepEqual(ackC.members.map((m) => m.member).sort(), [a.id, b.id].sort(), 'b is listed once');
    assert.ok(ackC.members.find((m) => m.member === b.id).at === ackB.at, 'b keeps its first joined-at');
  });

  it('msg is relayed to every other member with {room, from, ts, data} and acked {ok, ts}; not echoed', async () => {
    const room = roomId();
    const [a, b, c] = await env.roomOf(3, room);
    const data = bytes(1000);
    const ack = await a.send(room, data);
    assertServerTime(ack.ts, 'ack.ts');

    for (const p of [b, c]) {
      const m = await p.waitFor('msg', (e) => e.room === room);
      assert.equal(m.from, a.id);
      assert.equal(m.ts, ack.ts, 'receivers see the ts the sender was acked');
      assert.ok(isBinary(m.data), `data arrives as binary, got ${typeof m.data}`);
      assert.ok(toBuf(m.data).equals(data), 'data arrives intact');
      assert.ok(m.to === undefined || m.to === null, `a room message is not marked direct: to=${m.to}`);
    }
    await barrier(room, b, [a, c]);
    assert.deepEqual(msgsIn(a, room), [], 'the sender does not get its own message');
  });

  it('msg reaches only members of its room', async () => {
    const [r1, r2] = [roomId(), roomId()];
    const [a, b, c] = await env.connectMany(3);
    await a.join(r1);
    await b.join(r1);
    await a.join(r2);
    await c.join(r2);
    await a.send(r1, bytes(10));
    await barrier(r2, a, [c]);
    await b.waitCount('msg', 1);
    assert.deepEqual(msgsIn(c, r1), []);
    assert.deepEqual(c.events('msg').filter((m) => m.room !== r2), [], 'c got nothing of room r1');
  });

  it('msg with `to` reaches only that member, marked with `to`', async () => {
    const room = roomId();
    const [a, b, c] = await env.roomOf(3, room);
    const data = bytes(64);
    const ack = await a.send(room, data, { to: b.id });
    assertServerTime(ack.ts, 'ack.ts');
    const m = await b.waitFor('msg', (e) => e.room === room);
    assert.equal(m.from, a.id);
    assert.equal(m.to, b.id, 'a direct message carries `to`');
    assert.equal(m.ts, ack.ts);
    assert.ok(toBuf(m.data).equals(data));

    await barrier(room, a, [b, c]);
    await barrier(room, b, [a]);
    assert.deepEqual(msgsIn(c, room), [], 'other members do not get a direct message');
    assert.deepEqual(msgsIn(a, room), [], 'nor does its sender');
    assert.equal(msgsIn(b, room).length, 1);
  });

  // window: chunks in flight before the sender waits for an ack (1 = strictly one at a time).
  for (const window of [1, 8]) {
    it(`chunk is relayed as {room, from, file, seq, data}, binary intact, in order, over 200 chunks (${window} in flight)`, async () => {
      const room = roomId();
      const [a, b, c] = await env.roomOf(3, room);
      const file = fileId();
      const chunks = Array.from({ length: 200 }, (_, i) => bytes(1 + ((i * 7919) % 8192)));
      const inFlight = new Set();
      for (let seq = 0; seq < chunks.length; seq++) {
        const p = a.call('chunk', { room, file, seq, data: chunks[seq] }).then((ack) => {
          assert.deepEqual(pick(ack, ['ok']), { ok: true }, `chunk ${seq} ack: ${JSON.stringify(ack)}`);
          inFlight.delete(p);
        });
        inFlight.add(p);
        if (inFlight.size >= window) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);

      for (const p of [b, c]) {
        const got = await p.waitCount('chunk', chunks.length, (e) => e.room === room, { ms: 15_000 });
        assert.equal(got.length, chunks.length, 'no extra chunks');
        assert.deepEqual(got.map((e) => e.seq), chunks.map((_, i) => i), 'chunks arrive in the order they were sent');
        got.forEach((e, i) => {
          assert.deepEqual(pick(e, ['room', 'from', 'file', 'seq']), { room, from: a.id, file, seq: i }, `chunk #${i}`);
          assert.ok(isBinary(e.data), 'chunk data arrives as binary');
          assert.ok(toBuf(e.data).equals(chunks[i]), `chunk ${i} data intact`);
        });
      }
      await barrier(room, b, [a]);
      assert.deepEqual(a.events('chunk'), [], 'chunks are not echoed to their sender');
    });
  }

  it('leave acks {ok:true}; the others see presence leave with reason "left"', async () => {
    const room = roomId();
    const [a, b, c] = await env.roomOf(3, room);
    const ack = await b.leave(room);
    assert.deepEqual(pick(ack, ['ok']), { ok: true });
    for (const p of [a, c]) {
      const e = await p.waitFor('presence', (x) => x.kind === 'leave');
      assert.deepEqual(pick(e, ['room', 'kind', 'member', 'reason']), { room, kind: 'leave', member: b.id, reason: 'left' });
      assertServerTime(e.at, 'presence.at');
    }
    assert.ok(b.connected, 'leaving a room keeps the connection');
    await a.send(room, bytes(8));
    await barrier(room, a, [c]);
    const [d] = await env.connectMany(1);
    const ackD = await d.join(room);
    assert.deepEqual(ackD.members.map((m) => m.member).sort(), [a.id, c.id].sort(), 'b is no longer present');
  });

  it('disconnect makes the member leave every room it was in with reason "disconnected"', async () => {
    const [r1, r2] = [roomId(), roomId()];
    const [a, b, c] = await env.connectMany(3);
    await a.join(r1);
    await a.join(r2);
    await b.join(r1);
    await c.join(r2);
    const id = a.id;
    a.close();
    for (const [p, room] of [[b, r1], [c, r2]]) {
      const e = await p.waitFor('presence', (x) => x.kind === 'leave');
      assert.deepEqual(pick(e, ['room', 'kind', 'member', 'reason']), { room, kind: 'leave', member: id, reason: 'disconnected' });
      assertServerTime(e.at, 'presence.at');
    }
  });

  it('a room left by everyone is gone: a new joiner of the same id sees no members', async () => {
    const room = roomId();
    // emptied by `leave`
    const [a, b] = await env.roomOf(2, room);
    await a.leave(room);
    await b.leave(room);
    const [d] = await env.connectMany(1);
    assert.deepEqual((await d.join(room)).members, [], 'nobody is listed after everyone left');

    // emptied by a disconnect (observed by the last member) and a leave
    const [e] = await env.connectMany(1);
    await e.join(room);
    const gone = d.id;
    d.close();
    await e.waitFor('presence', (x) => x.kind === 'leave' && x.member === gone);
    await e.leave(room);
    const [f] = await env.connectMany(1);
    assert.deepEqual((await f.join(room)).members, [], 'nobody is listed after the last member left');
  });

  it('an event sent without an ack callback is still handled; its error comes back as a notice', async () => {
    const room = roomId();
    const [a, b] = await env.roomOf(2, room);
    const data = bytes(32);
    a.socket.emit('msg', { room, data });
    const m = await b.waitFor('msg', (e) => e.room === room);
    assert.equal(m.from, a.id);
    assert.ok(toBuf(m.data).equals(data));

    a.socket.emit('msg', { room: roomId(), data });
    const n1 = await a.waitFor('notice');
    assert.equal(n1.code, 'not_member');
    assert.equal(typeof n1.message, 'string');

    a.socket.emit('msg', { room: 'not-a-room', data });
    const n2 = await a.waitFor('notice', (n) => n !== n1);
    assert.equal(n2.code, 'bad_request');
    assert.equal(typeof n2.message, 'string');
    assert.ok(a.connected);
    await barrier(room, a, [b]);
    assert.equal(msgsIn(b, room).length, 1, 'only the valid ack-less message was relayed');
  });
});
