// Handshake floods: Engine.IO sessions count from their first request.
//
// A bare Engine.IO polling handshake costs the server a session before it ever connects
// to the chat. Here one address sends 20,000 of them, then 1,000 loopback addresses
// (127.1.0.1 to 127.4.231.1) send 3 each, while an honest room (from 127.0.0.2) keeps chatting. The
// server must admit at most its caps (per address: --max-connections-per-ip; in all:
// --max-sessions), refuse the rest at once with 429/503 and Retry-After, keep its
// resident memory within 16 MiB of where it started, and keep the honest room's round
// trips flowing, none lost. The honest round trips (p50/p99) are printed as figures, not
// asserted: they are a benchmark, and this machine is shared (docs/security.md has
// them). The flood runs in a worker thread so that it cannot delay the honest clients'
// own clocks. Admission is checked on the server's own gauge of open sessions, sampled
// throughout: sessions that never connect close after the connect timeout and free their
// places, so over a long flood more than the cap can be admitted one after the other.
//
// Run: cd tests && node --test hostile/handshakes.test.mjs   (about 20 s)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Env, bytes, metric, parseMetrics, roomId, sleep } from '../node/helpers.mjs';

const PER_IP = 64; // the default --max-connections-per-ip
const TOTAL = 400;
const CONNECT_TIMEOUT_SECS = 3;
const HONEST = { io: { localAddress: '127.0.0.2' } };

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m[1]);
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Samples the server's open-session gauge every 20 ms while `during` runs; resolves with its result and the peak. */
async function peakSessions(url, during) {
  let peak = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const text = await fetch(new URL('/metrics', url)).then((r) => r.text()).catch(() => '');
      peak = Math.max(peak, metric(parseMetrics(text), 'streamchat_sessions'));
      await sleep(20);
    }
  })();
  try {
    return { result: await during(), peak };
  } finally {
    running = false;
    await sampler;
  }
}

function flood(url, { total, inFlight, addresses }) {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./flood-worker.mjs', import.meta.url), { workerData: { url, total, inFlight, addresses } });
    w.once('message', resolve);
    w.once('error', reject);
  });
}

/** An honest room of three chatting every 100 ms (within the rate limit) while `during` runs; resolves with round trips (ms). */
async function chatDuring(env, during) {
  const room = roomId();
  const [a, b, c] = await env.roomOf(3, room, HONEST);
  const trips = [];
  const lost = [];
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      const seq = n++;
      const data = bytes(32, seq);
      const sent = performance.now();
      const ack = await a.call('msg', { room, data });
      if (!ack?.ok) { lost.push(ack); continue; }
      await Promise.all([b, c].map((p) => p.until(() => p.events('msg').some((m) => m.pos === ack.pos), { ms: 5000, what: `message ${seq}` })));
      trips.push(performance.now() - sent);
      await sleep(100);
    }
  })();
  let result;
  try {
    result = await during();
  } finally {
    running = false;
    await loop;
    for (const p of [a, b, c]) p.close();
  }
  return { trips, lost, result };
}

describe('handshake floods', { timeout: 120_000 }, () => {
  let env;
  before(async () => {
    env = await Env.start([
      '--max-connections-per-ip', PER_IP,
      '--max-sessions', TOTAL,
      '--handshakes-per-ip-per-second', 50, // the default
      '--connect-timeout-secs', CONNECT_TIMEOUT_SECS,
    ]);
  });
  after(async () => { await env?.server.stop(); });

  it('20,000 polling handshakes from one address: at most the cap open, memory and honest chat unaffected', async () => {
    const pid = env.server.proc.pid;
    const before = rssKiB(pid);
    let peak = before;
    const timer = setInterval(() => { peak = Math.max(peak, rssKiB(pid)); }, 50);
    const { trips, lost, result: { result, peak: open } } = await chatDuring(env, () => peakSessions(env.url, () => flood(env.url, { total: 20_000, inFlight: 64, addresses: ['127.0.0.1'] })));
    clearInterval(timer);
    const growthMiB = (peak - before) / 1024;
    const p99 = percentile(trips, 99);
    console.log(JSON.stringify({ flood: 'one address', ...result, peakOpenSessions: open, rssBeforeMiB: +(before / 1024).toFixed(1), rssGrowthMiB: +growthMiB.toFixed(1), honestTrips: trips.length, honestP50: +percentile(trips, 50).toFixed(1), honestP99: +p99.toFixed(1) }));
    const admitted = result.statuses[200] ?? 0;
    // The honest room's three connections come from another address.
    assert.ok(open <= PER_IP + 3, `at most ${PER_IP} sessions open from the flooding address (peak ${open} with the 3 honest)`);
    assert.ok(admitted >= PER_IP, `its ${PER_IP} places were used (${admitted})`);
    assert.equal(admitted + (result.statuses[429] ?? 0), 20_000, `every handshake answered 200 or 429: ${JSON.stringify(result.statuses)}`);
    assert.deepEqual(Object.keys(result.bodies), ['rate_limited'], 'every refusal says rate_limited');
    assert.ok(result.retryAfterOnEveryRefusal, 'every refusal carries Retry-After');
    assert.ok(growthMiB < 16, `RSS grew ${growthMiB.toFixed(1)} MiB, less than 16`);
    assert.deepEqual(lost, [], 'no honest message was refused');
    assert.ok(trips.length >= 5, `the honest room kept chatting (${trips.length} round trips)`);
  });

  it('1,000 loopback addresses: at most --max-sessions open in all, the rest told 503 with Retry-After', async () => {
    // The first flood's sessions never connected: they are closed after the connect
    // timeout, and their places come back.
    await sleep((CONNECT_TIMEOUT_SECS + 2) * 1000);
    const addresses = Array.from({ length: 1000 }, (_, i) => `127.${1 + (i >> 8)}.${i & 255}.1`);
    const pid = env.server.proc.pid;
    const before = rssKiB(pid);
    const { trips, lost, result: { result, peak: open } } = await chatDuring(env, () => peakSessions(env.url, () => flood(env.url, { total: 3000, inFlight: 100, addresses })));
    const growthMiB = (rssKiB(pid) - before) / 1024;
    const p99 = percentile(trips, 99);
    console.log(JSON.stringify({ flood: '1,000 addresses', ...result, peakOpenSessions: open, rssGrowthMiB: +growthMiB.toFixed(1), honestTrips: trips.length, honestP99: +p99.toFixed(1) }));
    const admitted = result.statuses[200] ?? 0;
    // The honest room's three connections hold places too.
    assert.ok(open <= TOTAL, `at most ${TOTAL} sessions open in all (peak ${open})`);
    assert.ok(admitted >= TOTAL - 3 - 10, `the free places were used (${admitted})`);
    assert.equal(admitted + (result.statuses[503] ?? 0), 3000, `every handshake answered 200 or 503: ${JSON.stringify(result.statuses)}`);
    assert.deepEqual(Object.keys(result.bodies), ['unavailable'], 'every refusal says unavailable');
    assert.ok(result.retryAfterOnEveryRefusal, 'every refusal carries Retry-After');
    assert.ok(growthMiB < 16, `RSS grew ${growthMiB.toFixed(1)} MiB, less than 16`);
    assert.deepEqual(lost, [], 'no honest message was refused');
    assert.ok(trips.length >= 5, `the honest room kept chatting (${trips.length} round trips)`);
  });
});
