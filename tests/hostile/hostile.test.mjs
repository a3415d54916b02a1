// Hostile clients on loopback against the release binary, while honest clients chat.
//
// Three honest members of one room (in a worker thread: honest-worker.mjs) send a
// message every 100 ms, well inside the rate limit, for the whole file. Meanwhile, one
// hostile kind after another runs against the same server: message floods beyond the
// rate limit, join/leave storms, malformed and oversized payloads from a raw Socket.IO
// client (raw-client.mjs), chunk floods with receivers that never read, and connection
// floods from one address. Each hostile request must get its answer (its error code,
// or, where documented, the connection closed); at the end the honest members must have
// lost nothing, in order, and the server's resident memory must have stayed bounded.
// Honest round trips are printed as figures (p50/p99), not asserted: they are a
// benchmark, and this machine is shared.
//
// Run: cd tests && node --test --test-concurrency=1 hostile/   (about 30 s)
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  Env, assertError, assertOk, barrier, bytes, fileId, handshake, indexOf, indexed, metric, msgsIn, openSocket, profile, roomId, sleep,
} from '../node/helpers.mjs';
import { RawClient } from './raw-client.mjs';

// The server's defaults, except where a bound must be reached within seconds or a
// flood kept small; docs/security.md gives the figures for the defaults.
const L = {
  messageBurst: 40, // default --message-burst (refill: --messages-per-second 20)
  maxMessage: 65_536, // default
  maxChunk: 256 * 1024, // the default chunk size of docs/crypto.md §9; the default limit is 1 MiB
  byteBurst: 16 * 1024 * 1024, // default --byte-burst and --bytes-per-second
  sendBuffer: 256, // default --send-buffer-packets
  membersPerRoom: 8, // default 1000
  roomsPerConnection: 16, // default
  connectionsPerIp: 40, // default 64
  maxFileChunks: 256, // default
};
const LARGEST_PACKET = L.maxChunk + 64 * 1024; // the server's transport and parser limit
const ARGS = [
  '--max-chunk-bytes', L.maxChunk,
  '--max-members-per-room', L.membersPerRoom,
  '--max-connections-per-ip', L.connectionsPerIp,
];
const RSS_GROWTH_BOUND_MIB = 200;
const HONEST_PEERS = 3;
const HONEST_INTERVAL_MS = 100;
const HONEST_MIN_MESSAGES = 60;
let honestStartedAt = 0;

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m[1]);
}

const mib = (kib) => (kib / 1024).toFixed(1);

function percentile(values, p) {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Counts ack codes: {ok: n, rate_limited: n, ...}. */
function tally(acks) {
  const out = {};
  for (const a of acks) {
    const k = a?.ok === true ? 'ok' : a?.error?.code ?? JSON.stringify(a);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

describe('hostile clients while honest clients chat', { timeout: 120_000 }, () => {
  let env;
  let honest;
  let rss;
  let honestStopped = false;
  const figures = {};

  /** Hostile connections of one test, closed at its end (honest ones live in the worker). */
  const hostiles = new Set();
  const raws = new Set();
  async function rawClient() {
    const c = await RawClient.connect(env.url);
    raws.add(c);
    return c;
  }
  async function hostile(n, opts) {
    const peers = await Promise.all(Array.from({ length: n }, () => env.connect(opts)));
    for (const p of peers) { hostiles.add(p); env.peers.delete(p); }
    return peers;
  }
  async function closeHostiles() {
    for (const p of hostiles) p.close();
    hostiles.clear();
    for (const c of raws) c.close();
    raws.clear();
    // Wait until the server has let them go, so the next test starts from the honest three.
    const expected = honestStopped ? 0 : HONEST_PEERS;
    await env.metricsUntil((m) => metric(m, 'streamchat_connections') === expected, { ms: 10_000, what: 'hostile connections closed' });
  }

  before(async () => {
    env = await Env.start(ARGS);
    const pid = env.server.proc.pid;
    honest = new Worker(new URL('./honest-worker.mjs', import.meta.url), {
      workerData: { url: env.url, room: roomId(), peers: HONEST_PEERS, intervalMs: HONEST_INTERVAL_MS },
    });
    await new Promise((resolve, reject) => {
      honest.once('message', resolve);
      honest.once('error', reject);
    });
    honestStartedAt = Date.now();
    const baseline = rssKiB(pid);
    const sample = () => {
      try {
        rss.peak = Math.max(rss.peak, rssKiB(pid));
      } catch {
        rss.gone = true; // the server process is gone: the last test reports it
      }
    };
    rss = { baseline, peak: baseline, gone: false, timer: setInterval(sample, 50) };
  });

  afterEach(() => closeHostiles());

  after(async () => {
    clearInterval(rss?.timer);
    await honest?.terminate();
    for (const p of hostiles) p.close();
    await env?.stop();
  });

  it('message flood beyond the rate limit: every msg answered ok or rate_limited; exactly the accepted ones relayed, in order', async () => {
    const room = roomId();
    const [flooder, reader, marker] = await hostile(3);
    for (const p of [flooder, reader, marker]) await p.join(room);

    // With acks: 600 pipelined messages, far beyond the burst of 40 and 20/s.
    const N = 600;
    const acks = await Promise.all(Array.from({ length: N }, (_, i) => flooder.call('msg', { room, data: indexed(i, 512) })));
    const counts = tally(acks);
    assert.deepEqual(Object.keys(counts).sort(), ['ok', 'rate_limited'], `only ok and rate_limited: ${JSON.stringify(counts)}`);
    for (const a of acks.filter((x) => !x.ok)) assertError(a, 'rate_limited');
    assert.ok(counts.ok >= L.messageBurst && counts.ok < N, `the burst passes, the flood does not: ${JSON.stringify(counts)}`);
    const accepted = acks.map((a, i) => (a.ok ? i : -1)).filter((i) => i >= 0);

    // Without acks: each refusal comes back as a notice, so nothing is silent.
    await sleep(2100); // refill the bucket (40 tokens at 20/s)
    const M = 200;
    for (let i = 0; i < M; i++) flooder.socket.emit('msg', { room, data: indexed(N + i, 512) });
    // One connection's msg, chunk and leave are handled in arrival order: once this
    // leave is answered, all 200 were handled and their notices are already here.
    assertError(await flooder.call('leave', { room: roomId() }), 'not_member');
    const notices = flooder.events('notice', (n) => n.code === 'rate_limited').length;
    assert.ok(notices > 0, 'the ack-less flood was refused with notices');
    await barrier(room, marker, [reader]); // everything accepted before now has reached the reader

    const got = msgsIn(reader, room).filter((m) => m.from === flooder.id).map((m) => indexOf(m.data));
    assert.deepEqual(got.filter((i) => i < N), accepted, 'the reader got exactly the accepted messages, in order');
    assert.deepEqual(got.filter((i) => i >= N).length, M - notices, 'ack-less: relayed = sent - refused, none silent');
    assert.ok(flooder.connected && reader.connected);
    figures.msgFlood = { sent: N + M, accepted: counts.ok + (M - notices), refused: counts.rate_limited + notices };
  });

  it('join/leave storms: every request answered, presence stays consistent; room_full and too_many_rooms', async () => {
    const room = roomId();
    const [watcher, marker] = await hostile(2);
    await watcher.join(room);
    await marker.join(room);
    const stormers = await hostile(4);
    const ROUNDS = 60;
    // Awaited storm: join, leave, join, leave, ...
    await Promise.all(stormers.slice(0, 2).map(async (s) => {
      for (let i = 0; i < ROUNDS; i++) {
        assertOk(await s.call('join', { room, profile: profile() }), 'storm join');
        assertOk(await s.call('leave', { room }), 'storm leave');
      }
    }));
    // Pipelined storm: joins and leaves emitted without waiting. `join` may wait on the
    // cluster store while `leave` is handled in arrival order, so a leave can find the
    // member not yet in: ok or not_member, but always an answer.
    const pipelined = await Promise.all(stormers.slice(2).flatMap((s) => Array.from({ length: ROUNDS }, (_, i) => (
      i % 2 === 0 ? s.call('join', { room, profile: profile() }) : s.call('leave', { room })))));
    const codes = tally(pipelined);
    for (const k of Object.keys(codes)) assert.ok(['ok', 'not_member'].includes(k), `pipelined storm answers: ${JSON.stringify(codes)}`);
    for (const s of stormers.slice(2)) await s.call('leave', { room }); // in or out, end out

    // The watcher saw each stormer alternate join, leave, ... and end out of the room.
    await barrier(room, marker, [watcher]); // presence of the storm precedes the marker in room order
    for (const s of stormers) {
      const kinds = watcher.events('presence', (p) => p.room === room && p.member === s.id).map((p) => p.kind);
      assert.ok(kinds.length >= 2, `the watcher saw ${s.id} come and go`);
      assert.ok(kinds.every((k, i) => k === (i % 2 === 0 ? 'join' : 'leave')), `alternating presence for ${s.id}: ${kinds.join(',')}`);
    }
    assert.equal(watcher.events('presence', (p) => p.room === room && p.kind === 'leave').filter((p) => p.reason !== 'left').length, 0);

    // Limits: the 17th room of one connection, the 9th member of one room.
    const [collector] = stormers;
    for (let i = 0; i < L.roomsPerConnection; i++) await collector.join(roomId());
    assertError(await collector.call('join', { room: roomId(), profile: profile() }), 'too_many_rooms');
    const full = roomId();
    const crowd = await hostile(L.membersPerRoom + 2);
    const joins = [];
    for (const p of crowd) joins.push(await p.call('join', { room: full, profile: profile() }));
    assert.deepEqual(tally(joins), { ok: L.membersPerRoom, room_full: 2 });
    figures.storm = { awaitedPairs: 2 * ROUNDS, pipelined: pipelined.length, pipelinedAnswers: codes };
  });

  it('malformed and oversized payloads from a raw client: each answered with its error code, the connection stays up', async () => {
    const room = roomId();
    const [reader] = await hostile(1);
    await reader.join(room);
    const raw = await rawClient();
    const [joinAck] = await raw.request('join', JSON.stringify({ room, profile: profile() }));
    assertOk(joinAck, 'raw join');

    const file = fileId();
    const bin = bytes(64);
    const placeholder = (num) => `{"_placeholder":true,"num":${num}}`;
    const deepArrays = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const deepObjects = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const big = 'A'.repeat(200_000); // inside the 320 KiB packet limit
    const R = JSON.stringify(room);
    const cases = [
      // nesting
      ['join', deepArrays, 'bad_request', '10,000 nested arrays as the payload'],
      ['msg', deepObjects, 'bad_request', '10,000 nested objects as the payload'],
      ['msg', `{"room":${deepArrays},"data":${placeholder(0)}}`, 'bad_request', '10,000 nested arrays as the room', [bin]],
      ['chunk', `{"room":${R},"file":"${file}","seq":${deepArrays},"data":${placeholder(0)}}`, 'bad_request', '10,000 nested arrays as seq', [bin]],
      // Unknown fields are skipped without recursion: the request is handled as usual.
      ['leave', `{"room":${JSON.stringify(roomId())},"x":${deepObjects}}`, 'not_member', '10,000 nested objects in an unknown field'],
      // huge strings
      ['join', `{"room":"${big}","profile":"eA"}`, 'bad_request', 'a 200 kB room id'],
      ['join', `{"room":${JSON.stringify(roomId())},"profile":"${big}"}`, 'too_large', 'a 200 kB profile'],
      ['msg', `{"room":${R},"data":"${big}"}`, 'bad_request', 'a 200 kB string as data'],
      ['msg', `{"room":${R},"data":[${'7,'.repeat(50_000)}7]}`, 'bad_request', '50,001 numbers as data'],
      ['chunk', `{"room":${R},"file":"${big}","seq":0,"data":${placeholder(0)}}`, 'bad_request', 'a 200 kB file id', [bin]],
      ['msg', `{"room":${R},"data":${placeholder(0)},"to":"${big}"}`, 'bad_request', 'a 200 kB `to`', [bin]],
      // not binary, or fake binary
      ['msg', `{"room":${R},"data":${placeholder(0)}}`, 'bad_request', 'a binary placeholder in a text-only packet'],
      // socketioxide hands out attachments in placeholder order and ignores `num`, so a
      // wrong index still yields the one attachment sent: relayed as sent, not an error.
      ['msg', `{"room":${R},"data":${placeholder(3)}}`, 'ok', 'a placeholder index past its attachments', [bin]],
      ['msg', `{"room":${R},"data":${placeholder(-1)}}`, 'bad_request', 'a negative placeholder', [bin]],
      ['msg', `{"room":${R},"data":{"_placeholder":"yes","num":0}}`, 'bad_request', 'a placeholder that is not true', [bin]],
      ['chunk', `{"room":${R},"file":"${file}","seq":0,"data":{"num":0}}`, 'bad_request', 'an object as data', [bin]],
      ['chunk', `{"room":${R},"file":"${file}","seq":0,"data":"${bin.toString('base64')}"}`, 'bad_request', 'base64 chunk data'],
      // wrong types, missing fields
      ['msg', 'true', 'bad_request', 'a boolean payload'],
      ['msg', '"msg"', 'bad_request', 'a string payload'],
      ['leave', 'null', 'bad_request', 'a null payload'],
      ['join', '[]', 'bad_request', 'an empty array payload'],
      ['msg', undefined, 'bad_request', 'no payload at all'],
      ['leave', '{}', 'bad_request', 'an empty object'],
      ['join', `{"room":{"room":${R}},"profile":"eA"}`, 'bad_request', 'an object as room'],
      ['join', `{"room":${R},"room":${R},"profile":"eA"}`, 'bad_request', 'a duplicate field'],
      ['join', `{"room":${JSON.stringify(roomId())},"profile":"${'é'.repeat(100)}"}`, 'bad_request', 'a profile that is not base64url'],
      ['join', `{"room":"\\u0000${'A'.repeat(21)}","profile":"eA"}`, 'bad_request', 'a NUL in the room id'],
      ['join', `{"room":"\\ud800${'A'.repeat(21)}","profile":"eA"}`, 'bad_request', 'a lone surrogate in the room id'],
      ['chunk', `{"room":${R},"file":"${file}","seq":4294967296,"data":${placeholder(0)}}`, 'bad_request', 'seq beyond u32', [bin]],
      ['chunk', `{"room":${R},"file":"${file}","seq":1e400,"data":${placeholder(0)}}`, 'bad_request', 'seq 1e400', [bin]],
      ['chunk', `{"room":${R},"file":"${file}","seq":"0","data":${placeholder(0)}}`, 'bad_request', 'seq as a string', [bin]],
      ['msg', `{"room":${R},"data":${placeholder(0)},"to":{"member":"x"}}`, 'bad_request', 'an object as `to`', [bin]],
      // limits
      ['msg', `{"room":${R},"data":${placeholder(0)}}`, 'too_large', `a ${L.maxMessage + 1}-byte message`, [bytes(L.maxMessage + 1)]],
      ['chunk', `{"room":${R},"file":"${file}","seq":0,"data":${placeholder(0)}}`, 'too_large', `a ${L.maxChunk + 1}-byte chunk`, [bytes(L.maxChunk + 1)]],
      ['chunk', `{"room":${R},"file":"${file}","seq":${L.maxFileChunks},"data":${placeholder(0)}}`, 'too_large', 'seq = max-file-chunks', [bin]],
      ['msg', `{"room":${JSON.stringify(roomId())},"data":${placeholder(0)}}`, 'not_member', 'a room not joined', [bin]],
    ];
    const answers = [];
    for (const [event, args, code, name, binaries] of cases) {
      let ack;
      try {
        [ack] = await raw.request(event, args, { binaries });
      } catch (e) {
        assert.fail(`${event} with ${name}: ${e.message}`);
      }
      if (code === 'ok') assertOk(ack, `${event} with ${name}`);
      else assertError(ack, code, `${event} with ${name}`);
      answers.push(code);
    }
    const relayedOk = answers.filter((c) => c === 'ok').length;
    assert.equal(raw.isClosed, false, 'the raw client is still connected');
    // And it still works: a valid message goes through to the reader, intact.
    const good = bytes(32);
    const [ok] = await raw.request('msg', `{"room":${R},"data":${placeholder(0)}}`, { binaries: [good] });
    assertOk(ok, 'a valid msg after all that');
    await reader.waitFor('msg', (m) => m.room === room && Buffer.compare(Buffer.from(m.data), good) === 0, { what: 'the valid msg' });
    assert.equal(msgsIn(reader, room).length, 1 + relayedOk, 'nothing refused was relayed');
    figures.malformed = { cases: cases.length, answers: tally(answers.map((c) => (c === 'ok' ? { ok: true } : { ok: false, error: { code: c } }))) };
  });

  it('unknown events with an ack callback are answered bad_request', async () => {
    const raw = await rawClient();
    for (const event of ['nonexistent', 'JOIN', 'presence', 'notice', '']) {
      const [ack] = await raw.request(event, '{}').catch((e) => assert.fail(`event ${JSON.stringify(event)}: ${e.message}`));
      assertError(ack, 'bad_request', `event ${JSON.stringify(event)}`);
    }
  });

  it('packets the Socket.IO layer cannot read close that connection, and only that one', async () => {
    const cases = [
      ['an event name that is a number', (c) => c.request('x', '{}', { eventText: '123' }).catch(() => {})],
      ['an event name 10,000 arrays deep', (c) => c.request('x', '{}', { eventText: '['.repeat(10_000) + ']'.repeat(10_000) }).catch(() => {})],
      ['JSON cut short', (c) => c.sendText('42["msg",{"room":')],
      ['an unknown packet type', (c) => c.sendText('47["msg",{}]')],
      ['attachments announced, then a text packet', (c) => { c.sendText('451-9["msg",{"data":{"_placeholder":true,"num":0}}]'); c.sendText('429["leave",{}]'); }],
      [`a ${LARGEST_PACKET + 1024}-byte text frame`, (c) => c.sendText(`42["msg",{"room":"${'A'.repeat(LARGEST_PACKET + 1024)}"}]`)],
      ['a binary frame nobody announced', (c) => c.ws.send(bytes(16), { binary: true })],
    ];
    const observed = {};
    for (const [name, send] of cases) {
      const c = await rawClient();
      send(c);
      const closed = await c.closesWithin(3000);
      observed[name] = closed ? 'closed' : 'kept open';
    }
    figures.unreadable = observed;
    assert.deepEqual(Object.values(observed).filter((v) => v !== 'closed'), [], `each unreadable packet closes its connection: ${JSON.stringify(observed, null, 1)}`);
  });

  it('chunk flood with never-reading receivers: every chunk answered ok/rate_limited, never-readers cut off, the reader loses nothing', async () => {
    const room = roomId();
    const [flooder] = await hostile(1);
    const [reader, marker] = await hostile(2, { dataPrefix: 8 });
    const nevers = await hostile(2, { dataPrefix: 8 });
    for (const p of [flooder, reader, marker, ...nevers]) await p.join(room);
    const neverIds = nevers.map((n) => n.id);
    // Stop reading: the kernel's buffers fill, then the server's queue for each.
    for (const n of nevers) n.socket.io.engine.transport.ws._socket.pause();
    const before = await env.metrics();

    const cutOff = (id) => reader.events('presence', (p) => p.kind === 'leave' && p.member === id).length > 0;
    const accepted = [];
    const answers = [];
    let next = 0;
    let file = fileId();
    let sentBytes = 0;
    let acceptedBytes = 0;
    /** Sends `n` chunks of `size` bytes pipelined and waits for every answer. */
    const burst = async (n, size) => {
      const calls = Array.from({ length: n }, () => {
        const k = next++;
        if (k % L.maxFileChunks === 0 && k > 0) file = fileId();
        return { k, size, call: flooder.call('chunk', { room, file, seq: k % L.maxFileChunks, data: indexed(k, size) }) };
      });
      for (const { k, size: bytes, call } of calls) {
        const ack = await call;
        answers.push(ack);
        if (ack.ok) { accepted.push(k); acceptedBytes += bytes; }
        sentBytes += bytes;
      }
    };
    const t0 = Date.now();
    // 24 MiB of maximum-size chunks at once against a 16 MiB byte bucket: the tail is
    // refused.
    await burst(96, L.maxChunk);
    // Then 64 KiB chunks, 16 at a time, until both never-readers are cut off: each may
    // hold --send-buffer-packets chunks (shared between them) beyond the kernel's
    // buffers before it counts as too slow.
    while (!neverIds.every(cutOff) && Date.now() - t0 < 30_000) await burst(16, 64 * 1024);
    const floodMs = Date.now() - t0;
    const counts = tally(answers);
    assert.deepEqual(Object.keys(counts).filter((k) => k !== 'ok' && k !== 'rate_limited'), [], `chunk flood answers: ${JSON.stringify(counts)}`);
    for (const a of answers.filter((x) => !x.ok)) assertError(a, 'rate_limited');
    assert.ok(counts.rate_limited > 0, `a 24 MiB burst against a 16 MiB bucket is partly refused: ${JSON.stringify(counts)}`);

    for (const id of neverIds) {
      assert.ok(cutOff(id), `never-reader ${id} cut off after ${accepted.length} accepted chunks (${floodMs} ms)`);
      const leave = reader.events('presence', (p) => p.kind === 'leave' && p.member === id)[0];
      assert.equal(leave.reason, 'timeout');
    }
    // The reader is still working through megabytes of chunks: a patient barrier.
    const mark = bytes(16);
    assertOk(await marker.call('msg', { room, data: mark }));
    await reader.waitFor('msg', (m) => m.room === room && m.from === marker.id, { ms: 30_000, what: 'the marker after the flood' });
    const got = reader.events('chunk', (c) => c.room === room);
    assert.deepEqual(got.map((c) => indexOf(c.data)), accepted, 'the reader got exactly the accepted chunks, in order');
    assert.ok(got.every((c) => c.from === flooder.id));
    assert.ok(reader.connected && flooder.connected && marker.connected, 'the others stay connected');
    const afterM = await env.metricsUntil((m) => metric(m, 'streamchat_slow_receiver_disconnects_total')
      - metric(before, 'streamchat_slow_receiver_disconnects_total') >= nevers.length, { what: 'slow receiver counter' });
    // Let the never-readers go for good: their sockets would otherwise stay half-open.
    for (const n of nevers) n.socket.io.engine.transport.ws._socket.destroy();
    figures.chunkFlood = {
      ms: floodMs,
      chunks: answers.length,
      sentMiB: +(sentBytes / 2 ** 20).toFixed(1),
      acceptedMiB: +(acceptedBytes / 2 ** 20).toFixed(1),
      refused: counts.rate_limited,
      slowCutOffs: metric(afterM, 'streamchat_slow_receiver_disconnects_total') - metric(before, 'streamchat_slow_receiver_disconnects_total'),
    };
  });

  it('a pipelined flood longer than the send buffer: every request still answered', async () => {
    // Only the flooder is in its room, so nothing else can fill its queue: what fills
    // it is its own answers. Each request must still get one (protocol.md: any failure
    // acks; nothing silent), or the connection must be cut off.
    const room = roomId();
    const [flooder] = await hostile(1);
    await flooder.join(room);
    const N = 2000;
    const t0 = Date.now();
    const settled = await Promise.allSettled(Array.from({ length: N }, (_, i) => flooder.call('msg', { room, data: indexed(i, 64) })));
    const answered = settled.filter((x) => x.status === 'fulfilled').map((x) => x.value);
    figures.pipelined = { sent: N, answered: tally(answered), unanswered: N - answered.length, connected: flooder.connected, ms: Date.now() - t0 };
    assert.ok(answered.length === N || !flooder.connected,
      `${N - answered.length} of ${N} pipelined msgs got no answer and the connection stayed up: ${JSON.stringify(figures.pipelined)}`);
  });

  it('connection flood from one address: at most --max-connections-per-ip admitted, the rest refused at the handshake', async () => {
    const free = L.connectionsPerIp - HONEST_PEERS;
    const EXTRA = 20;
    const results = await Promise.all(Array.from({ length: free + EXTRA }, () => openSocket(env.url).then((s) => ({ s }), (e) => ({ e }))));
    const admitted = results.filter((r) => r.s);
    const refused = results.filter((r) => r.e);
    // Bare Engine.IO sessions (never connecting to the chat) count too, from their
    // handshake: with every place taken, none opens.
    const BARE = 100;
    const bare = await Promise.all(Array.from({ length: BARE }, () => RawClient.bare(env.url).catch(() => null)));
    const bareOpen = bare.filter(Boolean);
    const answer = await handshake(env.url);
    try {
      assert.ok(admitted.length <= free, `admitted ${admitted.length}, at most ${free} beside the ${HONEST_PEERS} honest`);
      assert.ok(refused.length >= EXTRA, `${refused.length} refused, at least ${EXTRA}`);
      for (const { e } of refused) assert.equal(e.type, 'TransportError', `refused at the handshake, got ${e.message}`);
      assert.ok(admitted.length + bareOpen.length <= free, `${admitted.length} connections and ${bareOpen.length} bare sessions opened, at most ${free}`);
      assert.equal(answer.status, 429, `a further handshake: ${JSON.stringify(answer)}`);
      assert.equal(answer.body?.code, 'rate_limited');
      assert.ok(Number(answer.retryAfter) > 0, 'with Retry-After');
    } finally {
      for (const { s } of admitted) s.close();
      for (const c of bareOpen) c.close();
    }
    figures.connectionFlood = { attempted: free + EXTRA, admitted: admitted.length, refused: refused.length, bareEngineIoOpened: `${bareOpen.length} of ${BARE}` };
  });

  it('honest members lost nothing, in order; server memory stayed bounded', async () => {
    const result = new Promise((resolve, reject) => {
      honest.once('message', resolve);
      honest.once('error', reject);
    });
    // Honest members chat for at least HONEST_MIN_MESSAGES rounds, however quickly the
    // hostile clients were dealt with, so "they kept sending" measures the server.
    const minimumMs = HONEST_MIN_MESSAGES * HONEST_INTERVAL_MS * 1.2;
    await new Promise((r) => setTimeout(r, Math.max(0, honestStartedAt + minimumMs - Date.now())));
    honest.postMessage('stop');
    const r = await result;
    honestStopped = true;
    clearInterval(rss.timer);
    const { proc } = env.server;
    assert.ok(!rss.gone && proc.exitCode === null && proc.signalCode === null,
      `the server survived (exit code ${proc.exitCode}, signal ${proc.signalCode}); stderr tail:\n${env.server.stderr().slice(-2000)}`);
    const end = rssKiB(proc.pid);
    rss.peak = Math.max(rss.peak, end);

    const fmt = (v) => v.toFixed(1);
    const ack = { p50: percentile(r.ackMs, 50), p99: percentile(r.ackMs, 99), max: Math.max(...r.ackMs) };
    const delivery = { p50: percentile(r.deliveryMs, 50), p99: percentile(r.deliveryMs, 99), max: Math.max(...r.deliveryMs) };
    const lines = [
      `honest: ${HONEST_PEERS} members, one msg each every ${HONEST_INTERVAL_MS} ms; sent ${r.sent.join('+')} = ${r.sent.reduce((a, b) => a + b, 0)} msgs, ${r.deliveryMs.length} deliveries`,
      `honest ack round trip (ms): p50 ${fmt(ack.p50)}, p99 ${fmt(ack.p99)}, max ${fmt(ack.max)}`,
      `honest delivery sender→receiver (ms): p50 ${fmt(delivery.p50)}, p99 ${fmt(delivery.p99)}, max ${fmt(delivery.max)}`,
      `server VmRSS (MiB): baseline ${mib(rss.baseline)}, peak ${mib(rss.peak)}, end ${mib(end)}, peak growth ${mib(rss.peak - rss.baseline)}`,
      `hostile: ${JSON.stringify(figures)}`,
    ];
    // eslint-disable-next-line no-console
    console.log(lines.map((l) => `# ${l}`).join('\n'));

    assert.deepEqual(r.problems, [], 'honest acks were all ok and nobody was disconnected');
    assert.deepEqual(r.lost, [], 'every honest message reached every other honest member, once, in order');
    assert.deepEqual(r.unexpected, [], 'nothing else reached the honest room');
    assert.ok(r.sent.every((n) => n > 50), `honest members kept sending: ${r.sent}`);
    assert.ok((rss.peak - rss.baseline) / 1024 < RSS_GROWTH_BOUND_MIB,
      `server RSS grew by ${mib(rss.peak - rss.baseline)} MiB (bound ${RSS_GROWTH_BOUND_MIB} MiB)`);
  });
});
