// Per-room order: the server delivers a room's events in the order it accepted them.
// Two senders send concurrently; each property is its own test so a report names exactly
// which one broke. Two sending styles: "paced" (each sender waits for the ack of its
// previous message) and "pipelined" (each sender emits all its messages at once, as a
// client does when the user types faster than the round trip).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Env, assertOk, roomId, toBuf } from './helpers.mjs';

const N = 150;
const label = (sender, i) => Buffer.from(`${sender}:${i}`);
const parse = (m) => toBuf(m.data).toString();
const inOrder = (tag) => Array.from({ length: N }, (_, i) => `${tag}:${i}`);

const STYLES = {
  async paced(peer, room, tag) {
    const acks = [];
    for (let i = 0; i < N; i++) acks.push(await peer.call('msg', { room, data: label(tag, i) }));
    return acks;
  },
  pipelined(peer, room, tag) {
    return Promise.all(Array.from({ length: N }, (_, i) => peer.call('msg', { room, data: label(tag, i) })));
  },
};

for (const [style, send] of Object.entries(STYLES)) {
  describe(`per-room order, two concurrent ${style} senders`, { timeout: 60_000 }, () => {
    let env;
    let room;
    let acks; // { A: [...], B: [...] }
    const views = {}; // receiver name → ['A:0', 'B:0', ...] in arrival order
    const received = {}; // receiver name → msg payloads

    before(async () => {
      // Generous rate limits and send buffers: this is about order, not limits.
      env = await Env.start(['--messages-per-second', 100000, '--message-burst', 100000, '--send-buffer-packets', 4096]);
      room = roomId();
      const [a, b, c, d] = await env.roomOf(4, room);
      const [ackA, ackB] = await Promise.all([send(a, room, 'A'), send(b, room, 'B')]);
      acks = { A: ackA, B: ackB };
      for (const [name, peer, expect] of [['c', c, 2 * N], ['d', d, 2 * N], ['a', a, N], ['b', b, N]]) {
        received[name] = await peer.waitCount('msg', expect, (m) => m.room === room, { ms: 20_000 });
        views[name] = received[name].map(parse);
      }
    });
    after(() => env.stop());

    it('every message is acked ok', () => {
      for (const tag of ['A', 'B']) acks[tag].forEach((ack, i) => assertOk(ack, `${tag}:${i}`));
    });

    it('each receiver gets every message exactly once', () => {
      assert.deepEqual([...views.c].sort(), [...inOrder('A'), ...inOrder('B')].sort());
      assert.deepEqual([...views.d].sort(), [...inOrder('A'), ...inOrder('B')].sort());
      assert.deepEqual([...views.a].sort(), inOrder('B').sort(), 'a gets all of b\'s, none of its own');
      assert.deepEqual([...views.b].sort(), inOrder('A').sort(), 'b gets all of a\'s, none of its own');
    });

    it('each sender\'s messages arrive in the order it sent them', () => {
      for (const name of ['c', 'd']) {
        for (const tag of ['A', 'B']) {
          assert.deepEqual(views[name].filter((s) => s.startsWith(`${tag}:`)), inOrder(tag), `${name} sees ${tag}'s messages in ${tag}'s order`);
        }
      }
      assert.deepEqual(views.a, inOrder('B'), 'a sees b\'s messages in b\'s order');
      assert.deepEqual(views.b, inOrder('A'), 'b sees a\'s messages in a\'s order');
    });

    it('every receiver sees the same total order', () => {
      assert.deepEqual(views.d, views.c);
    });

    it('receivers see the ts the sender was acked', () => {
      const tsOf = new Map(['A', 'B'].flatMap((tag) => acks[tag].map((ack, i) => [`${tag}:${i}`, ack.ts])));
      for (const m of received.c) assert.equal(m.ts, tsOf.get(parse(m)), `ts of ${parse(m)}`);
    });
  });
}
