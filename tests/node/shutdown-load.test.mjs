// Graceful shutdown under load: SIGTERM while a sender floods a room. The process exits
// within 5 s, and every message the server acknowledged before shutting down reached
// every receiver that was still connected.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Env, indexed, indexOf, roomId } from './helpers.mjs';

describe('graceful shutdown under load', { timeout: 30_000 }, () => {
  it('drains within 5 s and loses no acknowledged message', async () => {
    const env = await Env.start(['--messages-per-second', 100000, '--message-burst', 100000, '--send-buffer-packets', 4096]);
    const room = roomId();
    const [sender, ...receivers] = await env.roomOf(6, room);
    const acked = [];
    let stop = false;
    const flood = (async () => {
      for (let i = 0; !stop && i < 100_000; i++) {
        // Pipelined: up to 64 in flight, like a busy client.
        const batch = [];
        for (let j = 0; j < 64; j++, i++) {
          const n = i;
          batch.push(sender.socket.timeout(3000).emitWithAck('msg', { room, data: indexed(n, 200) })
            .then((ack) => { if (ack?.ok) acked.push(n); })
            .catch(() => {}));
        }
        await Promise.all(batch);
      }
    })();
    await receivers[0].waitCount('msg', 500, () => true, { ms: 10_000 });
    const t0 = Date.now();
    const exited = env.server.stop('SIGTERM');
    const { code } = await exited;
    const took = Date.now() - t0;
    stop = true;
    await flood;
    assert.equal(code, 0, 'exit status');
    assert.ok(took <= 5000, `exited after ${took} ms`);
    assert.ok(acked.length > 500, `${acked.length} messages acknowledged`);
    for (const r of receivers) {
      const got = new Set(r.events('msg', (m) => m.room === room).map((m) => indexOf(m.data)));
      const missing = acked.filter((n) => !got.has(n));
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged messages missing at ${r.id ?? 'a receiver'}`);
      assert.ok(r.events('notice', (n) => n.code === 'shutting_down').length === 1, 'the receiver was told');
    }
    env.server = undefined;
    await env.stop();
  });
});
