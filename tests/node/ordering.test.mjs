// Per-room order: the server delivers a room's events in the order it accepted them.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Env, assertOk, roomId, toBuf } from './helpers.mjs';

const label = (sender, i) => Buffer.from(`${sender}:${i}`);
const parse = (m) => toBuf(m.data).toString();

describe('per-room order', { timeout: 60_000 }, () => {
  let env;
  before(async () => {
    // Generous rate limits and send buffers: this test is about order, not limits.
    env = await Env.start(['--messages-per-second', 100000, '--message-burst', 100000, '--send-buffer-packets', 4096]);
  });
  afterEach(() => env.closePeers());
  after(() => env.stop());

  it('two concurrent senders: each one\'s messages arrive in its order, every receiver sees the same total order', async () => {
    const room = roomId();
    const [a, b, c, d] = await env.roomOf(4, room);
    const N = 150;
    // Both senders pipeline all their messages at once (no waiting for acks in between).
    const sends = (peer, tag) => Array.from({ length: N }, (_, i) => peer.call('msg', { room, data: label(tag, i) }));
    const acks = await Promise.all([...sends(a, 'A'), ...sends(b, 'B')]);
    acks.forEach((ack, i) => assertOk(ack, `message #${i}`));

    const inOrder = (tag) => Array.from({ length: N }, (_, i) => `${tag}:${i}`);
    const views = {};
    for (const [name, peer, expect] of [['c', c, 2 * N], ['d', d, 2 * N], ['a', a, N], ['b', b, N]]) {
      views[name] = (await peer.waitCount('msg', expect, (m) => m.room === room, { ms: 20_000 })).map(parse);
      assert.equal(views[name].length, expect, `${name} got no extra messages`);
    }
    for (const name of ['c', 'd']) {
      for (const tag of ['A', 'B']) {
        assert.deepEqual(views[name].filter((s) => s.startsWith(`${tag}:`)), inOrder(tag), `${name} sees ${tag}'s messages in ${tag}'s order`);
      }
    }
    assert.deepEqual(views.a, inOrder('B'), 'a sees b\'s messages in order (and none of its own)');
    assert.deepEqual(views.b, inOrder('A'), 'b sees a\'s messages in order (and none of its own)');
    assert.deepEqual(views.d, views.c, 'all receivers see the same total order');

    // The acked ts of each message is the ts its receivers see.
    const tsOf = new Map(acks.map((ack, i) => [i < N ? `A:${i}` : `B:${i - N}`, ack.ts]));
    const received = c.events('msg', (m) => m.room === room);
    received.forEach((m) => assert.equal(m.ts, tsOf.get(parse(m)), `ts of ${parse(m)}`));
  });
});
