// A receiver that stops reading while 1 MiB chunks flow: memory is bounded in bytes.
//
// With the server's defaults (1 MiB chunks allowed, --max-queued-bytes-per-connection
// 16 MiB), a member stops reading its socket while another sends 48 MiB of maximum-size
// chunks. Once the stalled member has more than a quarter of its bound queued, the
// sender's chunk acks are held for it (files follow the slowest receiver); its backlog
// does not shrink for the longest hold (3 s), so the server cuts it off (its room hears
// `leave` with reason `timeout`) and lets the sender go on. The server must never queue
// hundreds of MiB for it, and the member who reads must get every accepted chunk, in
// order. Before the byte bound a stalled receiver could hold --send-buffer-packets (256)
// chunks: 256 MiB.
//
// Run: cd tests && node --test hostile/slow-receiver.test.mjs   (about 15 s)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Env, fileId, indexOf, indexed, roomId } from '../node/helpers.mjs';

const CHUNK = 1024 * 1024;
const RSS_GROWTH_BOUND_MIB = 80; // the room's 16 MiB window, the 16 MiB queue, in-flight chunks

function rssKiB(pid) {
  return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m)[1]);
}

describe('a receiver that stops reading while 1 MiB chunks flow', { timeout: 60_000 }, () => {
  let env;
  before(async () => { env = await Env.start([]); });
  after(async () => { env?.closePeers(); await env?.server.stop(); });

  it('is cut off once it holds the sender back without reading; the others get everything; memory stays bounded', async () => {
    const room = roomId();
    const sender = await env.connect();
    const reader = await env.connect({ dataPrefix: 8 });
    const stalled = await env.connect({ dataPrefix: 8 });
    for (const p of [sender, reader, stalled]) await p.join(room);
    const stalledId = stalled.id;
    stalled.socket.io.engine.transport.ws._socket.pause();
    const pid = env.server.proc.pid;
    const base = rssKiB(pid);
    let peak = base;
    const timer = setInterval(() => { peak = Math.max(peak, rssKiB(pid)); }, 50);
    const accepted = [];
    let file = fileId();
    for (let k = 0; k < 48; k++) {
      if (k % 16 === 0) file = fileId();
      // One at a time, waiting out the byte bucket (16 MiB/s) when it says so.
      for (;;) {
        const ack = await sender.call('chunk', { room, file, seq: k % 16, data: indexed(k, CHUNK) });
        if (ack.ok) { accepted.push(k); break; }
        assert.equal(ack.error?.code, 'rate_limited', JSON.stringify(ack));
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const left = await reader.waitFor('presence', (p) => p.kind === 'leave' && p.member === stalledId, { ms: 15_000, what: 'the stalled receiver cut off' });
    assert.equal(left.reason, 'timeout', 'cut off as too slow');
    await reader.until(() => reader.events('chunk', (c) => c.room === room).length >= accepted.length, { ms: 20_000, what: 'every chunk at the reader' });
    clearInterval(timer);
    peak = Math.max(peak, rssKiB(pid));
    const got = reader.events('chunk', (c) => c.room === room).map((c) => indexOf(c.data));
    assert.deepEqual(got, accepted, 'the reader got every accepted chunk, in order');
    assert.ok(sender.connected && reader.connected, 'the others stay connected');
    const growthMiB = (peak - base) / 1024;
    console.log(JSON.stringify({ chunks: accepted.length, chunkMiB: 1, rssBaseMiB: +(base / 1024).toFixed(1), rssPeakGrowthMiB: +growthMiB.toFixed(1) }));
    assert.ok(growthMiB < RSS_GROWTH_BOUND_MIB, `RSS grew ${growthMiB.toFixed(1)} MiB, less than ${RSS_GROWTH_BOUND_MIB}`);
  });
});
