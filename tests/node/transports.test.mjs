// Transports: the default client (HTTP long-polling upgraded to WebSocket) and polling only,
// talking to a WebSocket peer, with binary data intact both ways.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Env, bytes, fileId, isBinary, roomId, toBuf } from './helpers.mjs';

/** One full exchange between `x` and `y` in `room`: msg both ways and a chunk, checked byte for byte. */
async function exchange(room, x, y) {
  for (const [from, to] of [[x, y], [y, x]]) {
    const data = bytes(3000);
    const ack = await from.send(room, data);
    const m = await to.waitFor('msg', (e) => e.ts === ack.ts && e.from === from.id && isBinary(e.data) && toBuf(e.data).equals(data));
    assert.equal(m.room, room);
    const file = fileId();
    const chunk = bytes(5000);
    assert.equal((await from.call('chunk', { room, file, seq: 3, data: chunk })).ok, true);
    const c = await to.waitFor('chunk', (e) => e.file === file);
    assert.deepEqual({ room: c.room, from: c.from, seq: c.seq }, { room, from: from.id, seq: 3 });
    assert.ok(isBinary(c.data) && toBuf(c.data).equals(chunk), 'chunk data intact');
  }
}

describe('transports', { timeout: 60_000 }, () => {
  let env;
  before(async () => { env = await Env.start(); });
  afterEach(() => env.closePeers());
  after(() => env.stop());

  it('default client (polling, then upgrade to websocket) works before and after the upgrade', async () => {
    const room = roomId();
    const ws = await env.connect();
    const dflt = await env.connect({ io: { transports: undefined, upgrade: true } });
    const engine = dflt.socket.io.engine;
    const upgraded = engine.transport.name === 'websocket'
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no upgrade to websocket within 5 s')), 5000);
        engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
      });

    const p = 'cHJvZmlsZQ';
    await ws.join(room);
    const ack = await dflt.join(room, p);
    assert.equal(ack.member, dflt.id);
    assert.equal((await ws.waitFor('presence', (e) => e.member === dflt.id)).profile, p);
    await exchange(room, dflt, ws);

    await upgraded;
    assert.equal(engine.transport.name, 'websocket');
    await exchange(room, dflt, ws);
  });

  it('polling-only client exchanges binary data with a websocket client', async () => {
    const room = roomId();
    const ws = await env.connect();
    const poll = await env.connect({ io: { transports: ['polling'] } });
    assert.equal(poll.socket.io.engine.transport.name, 'polling');
    await ws.join(room);
    await poll.join(room);
    await exchange(room, poll, ws);
    poll.close();
    const e = await ws.waitFor('presence', (x) => x.kind === 'leave');
    assert.equal(e.reason, 'disconnected');
  });
});
