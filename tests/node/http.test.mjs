// HTTP surface: /health, /metrics (moving with traffic), security headers.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  Env, assertError, bytes, fileId, hasMetric, metric, parseMetrics, roomId,
} from './helpers.mjs';

const GAUGES = ['streamchat_connections', 'streamchat_rooms', 'streamchat_members'];
const COUNTERS = [
  'streamchat_messages_relayed_total',
  'streamchat_chunks_relayed_total',
  'streamchat_bytes_relayed_total',
  'streamchat_slow_receiver_disconnects_total',
];
/** `# TYPE` line of a metric (a counter may be declared with or without its `_total` suffix). */
const typeLine = (name, type) => new RegExp(`^# TYPE (${name}|${name.replace(/_total$/, '')}) ${type}$`, 'm');
const gauges = (m) => Object.fromEntries(GAUGES.map((g) => [g, metric(m, g)]));

describe('HTTP endpoints', { timeout: 60_000 }, () => {
  let env;
  before(async () => { env = await Env.start(); });
  afterEach(() => env.closePeers());
  after(() => env.stop());

  it('GET /health → 200 JSON {"status":"ok", …}', async () => {
    const res = await env.fetch('/health');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const body = await res.json();
    assert.equal(body.status, 'ok');
  });

  it('GET /metrics → Prometheus text with the streamchat gauges and counters', async () => {
    const res = await env.fetch('/metrics');
    assert.equal(res.status, 200);
    // Prometheus text exposition (text/plain; version=0.0.4) or OpenMetrics text, which
    // Prometheus also scrapes (and which must end with "# EOF").
    const type = res.headers.get('content-type') ?? '';
    assert.match(type, /^(text\/plain|application\/openmetrics-text)/);
    const text = await res.text();
    if (type.startsWith('application/openmetrics-text')) assert.ok(text.trimEnd().endsWith('# EOF'), 'OpenMetrics ends with # EOF');
    const m = parseMetrics(text);
    for (const name of GAUGES) {
      assert.ok(hasMetric(m, name), `/metrics has ${name}:\n${text}`);
      assert.match(text, typeLine(name, 'gauge'), `${name} is a gauge`);
    }
  });

  it('metrics follow traffic: gauges for connections/rooms/members, counters for relays and rejections', async () => {
    // Gauges are read until they settle (a disconnect is processed after the client's close).
    const gaugesReach = (want) => env.metricsUntil((m) => JSON.stringify(gauges(m)) === JSON.stringify(want),
      { ms: 3000, what: `gauges ${JSON.stringify(want)}` });
    const m0 = await gaugesReach({ streamchat_connections: 0, streamchat_rooms: 0, streamchat_members: 0 });

    const [r1, r2] = [roomId(), roomId()];
    const [a, b, c] = await env.connectMany(3);
    await a.join(r1);
    await b.join(r1);
    await c.join(r1);
    await c.join(r2);
    await gaugesReach({ streamchat_connections: 3, streamchat_rooms: 2, streamchat_members: 4 });

    const msgBytes = 5 * 1000;
    for (let i = 0; i < 5; i++) await a.send(r1, bytes(1000));
    const file = fileId();
    for (let seq = 0; seq < 3; seq++) assert.equal((await a.call('chunk', { room: r1, file, seq, data: bytes(2000) })).ok, true);
    assertError(await a.call('msg', { room: r2, data: bytes(10) }), 'not_member');
    assertError(await a.call('join', { room: 'nope', profile: 'eA' }), 'bad_request');
    await b.waitCount('chunk', 3);
    await c.waitCount('chunk', 3);

    const m1 = await env.metrics();
    const delta = (name, labels) => metric(m1, name, labels) - metric(m0, name, labels);
    assert.ok(delta('streamchat_messages_relayed_total') >= 5, `messages_relayed_total grew by ${delta('streamchat_messages_relayed_total')}`);
    assert.ok(delta('streamchat_chunks_relayed_total') >= 3, `chunks_relayed_total grew by ${delta('streamchat_chunks_relayed_total')}`);
    assert.ok(delta('streamchat_bytes_relayed_total') >= msgBytes + 3 * 2000, `bytes_relayed_total grew by ${delta('streamchat_bytes_relayed_total')}`);
    assert.equal(delta('streamchat_rejections_total', { code: 'not_member' }), 1);
    assert.equal(delta('streamchat_rejections_total', { code: 'bad_request' }), 1);
    const text = await (await env.fetch('/metrics')).text();
    for (const name of [...COUNTERS.filter((n) => !n.includes('slow')), 'streamchat_rejections_total']) {
      assert.match(text, typeLine(name, 'counter'), `${name} is a counter`);
    }

    // Nothing is left of emptied rooms: gauges go back to zero.
    await c.leave(r2);
    await gaugesReach({ streamchat_connections: 3, streamchat_rooms: 1, streamchat_members: 3 });
    env.closePeers();
    await gaugesReach({ streamchat_connections: 0, streamchat_rooms: 0, streamchat_members: 0 });

    const [d] = await env.connectMany(1);
    assert.deepEqual((await d.join(r1)).members, [], 'a new joiner of the emptied room sees nobody');
  });

  describe('security headers', () => {
    const paths = ['/', '/health', '/metrics', '/no-such-page', '/socket.io/?EIO=4&transport=polling'];
    for (const path of paths) {
      it(`GET ${path} carries CSP, nosniff and no-referrer`, async () => {
        const res = await env.fetch(path);
        await res.arrayBuffer();
        const csp = res.headers.get('content-security-policy');
        assert.ok(csp, `${path}: Content-Security-Policy header missing (status ${res.status})`);
        const directives = Object.fromEntries(csp.split(';').map((d) => d.trim()).filter(Boolean)
          .map((d) => { const [k, ...v] = d.split(/\s+/); return [k.toLowerCase(), v]; }));
        assert.deepEqual(directives['frame-ancestors'], ["'none'"], `${path}: frame-ancestors 'none' in ${csp}`);
        assert.ok(directives['script-src']?.includes("'self'"), `${path}: script-src 'self' in ${csp}`);
        assert.ok(!csp.includes("'unsafe-inline'"), `${path}: no 'unsafe-inline' in ${csp}`);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
        assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      });
    }
  });
});
