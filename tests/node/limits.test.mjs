// Configurable limits: rate limits, room size, rooms per connection, connections per IP,
// and the bounded per-connection send buffer (slow receivers are cut off).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  Env, assertError, assertOk, assertRefusedForAddress, barrier, handshake, bytes, fileId, indexOf, indexed, metric, msgsIn, openSocket, roomId, sleep,
} from './helpers.mjs';

/** Starts a server with `args` for the enclosing describe; returns a getter for its Env. */
function serverFor(args) {
  let env;
  before(async () => { env = await Env.start(args); });
  afterEach(() => env.closePeers());
  after(() => env.stop());
  return () => env;
}

/** Retries `attempt` every 100 ms until it resolves truthy, for up to `ms` (for token refills). */
async function eventually(attempt, { ms = 5000, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await attempt();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`not ${what} within ${ms} ms`);
    await sleep(100);
  }
}

describe('rate_limited: messages per second', { timeout: 30_000 }, () => {
  const env = serverFor(['--messages-per-second', 2, '--message-burst', 2]);

  it('a burst beyond the bucket is refused, only accepted messages are relayed, others keep their own budget', async () => {
    const room = roomId();
    const [a, b, c] = await env().roomOf(3, room);
    const sent = Array.from({ length: 6 }, (_, i) => indexed(i));
    const acks = await Promise.all(sent.map((data) => a.call('msg', { room, data })));
    assertOk(acks[0], 'first message of the burst');
    assertOk(acks[1], 'second message of the burst');
    const refused = acks.filter((x) => !x.ok);
    assert.ok(refused.length >= 3, `at least 3 of 6 instant messages are refused with burst 2, got ${JSON.stringify(acks)}`);
    for (const x of refused) assertError(x, 'rate_limited');
    assert.ok(a.connected, 'the connection stays up');

    // b has its own bucket: both its messages pass, and they prove the room still flows.
    await barrier(room, b, [a, c]);
    await barrier(room, b, [a, c]);
    const accepted = sent.filter((_, i) => acks[i].ok).map((d) => indexOf(d));
    assert.deepEqual(msgsIn(c, room).filter((m) => m.from === a.id).map((m) => indexOf(m.data)), accepted,
      'exactly the accepted messages were relayed, in order');

    // An ack-less message while the bucket is empty gets a rate_limited notice.
    await eventually(async () => !(await a.call('msg', { room, data: bytes(8) })).ok, { what: 'bucket empty' });
    a.socket.emit('msg', { room, data: bytes(8) });
    const n = await a.waitFor('notice', (x) => x.code === 'rate_limited');
    assert.equal(typeof n.message, 'string');

    // Tokens come back with time (2 per second).
    await eventually(async () => (await a.call('msg', { room, data: bytes(8) })).ok, { what: 'accepted again' });
  });
});

describe('rate_limited: bytes per second', { timeout: 30_000 }, () => {
  // The server requires the byte burst to hold the largest message and chunk.
  const env = serverFor(['--bytes-per-second', 1000, '--byte-burst', 1000, '--max-message-bytes', 1000, '--max-chunk-bytes', 1000]);

  for (const kind of ['msg', 'chunk']) {
    it(`${kind} data is taken from the byte bucket`, async () => {
      const room = roomId();
      const [a, b] = await env().roomOf(2, room);
      const file = fileId();
      const send = (seq) => a.call(kind, kind === 'msg' ? { room, data: bytes(600) } : { room, file, seq, data: bytes(600) });
      assertOk(await send(0), `first 600-byte ${kind}`);
      assertError(await send(1), 'rate_limited', `second 600-byte ${kind} within a 1000-byte burst`);
      assert.ok(a.connected);
      await barrier(room, a, [b]); // a 16-byte marker still fits in what is left of the burst
      const relayed = kind === 'msg' ? msgsIn(b, room) : b.events('chunk');
      assert.equal(relayed.length, 1, 'only the accepted one was relayed');
    });
  }
});

describe('room_full', { timeout: 30_000 }, () => {
  const env = serverFor(['--max-members-per-room', 2]);

  it('a third member is refused; the room and the refused connection are unaffected', async () => {
    const room = roomId();
    const [a, b] = await env().roomOf(2, room);
    const [c] = await env().connectMany(1);
    const ack = await c.call('join', { room, profile: 'cGVlcg' });
    assertError(ack, 'room_full');
    assert.ok(c.connected);
    assert.equal((await c.join(roomId())).ok, true, 'the refused connection can join another room');
    assertError(await c.call('msg', { room, data: bytes(8) }), 'not_member', 'the refused joiner is not a member');

    await barrier(room, a, [b]);
    await barrier(room, b, [a]);
    assert.deepEqual(a.events('presence').map((p) => p.member), [b.id], 'a saw only b join');
    assert.deepEqual(b.events('presence'), [], 'no presence for the refused joiner');

    await b.leave(room);
    assert.deepEqual((await c.join(room)).members.map((m) => m.member), [a.id], 'a freed place can be taken');
  });
});

describe('too_many_rooms', { timeout: 30_000 }, () => {
  const env = serverFor(['--max-rooms-per-connection', 2]);

  it('a third room is refused; re-joining a joined room and joining after a leave still work', async () => {
    const [r1, r2, r3] = [roomId(), roomId(), roomId()];
    const [a, b] = await env().connectMany(2);
    await a.join(r1);
    await a.join(r2);
    await b.join(r3);
    assertError(await a.call('join', { room: r3, profile: 'cGVlcg' }), 'too_many_rooms');
    assert.ok(a.connected);
    assertOk(await a.call('join', { room: r1, profile: 'cGVlcg' }), 're-joining a room already joined is not a new room');
    assertError(await a.call('msg', { room: r3, data: bytes(8) }), 'not_member');

    await a.leave(r1);
    const ack = await a.join(r3);
    assert.deepEqual(ack.members.map((m) => m.member), [b.id]);
    await b.waitFor('presence', (p) => p.kind === 'join' && p.member === a.id);
    assert.equal(b.events('presence').length, 1, 'the refused join was not broadcast, the accepted one once');
  });
});

describe('connections per IP', { timeout: 30_000 }, () => {
  const env = serverFor(['--max-connections-per-ip', 3, '--connect-timeout-secs', 2]);

  it('a connection over the limit is refused at its handshake (429, rate_limited, Retry-After); closing one frees a place', async () => {
    const peers = await env().connectMany(3);
    const refuse = async () => {
      const err = await openSocket(env().url).then(
        (s) => { s.close(); return null; },
        (e) => e,
      );
      assert.ok(err, 'a 4th connection from the same address is refused');
      assert.equal(err.type, 'TransportError', `refused before it is a Socket.IO connection, got ${err.message}`);
      assertRefusedForAddress(await handshake(env().url));
    };
    await refuse();
    for (const p of peers) assert.ok(p.connected, 'the existing connections stay up');

    peers[0].close();
    // The server learns of the close asynchronously; retry until the place is free.
    const s = await eventually(() => openSocket(env().url).catch(() => null), { what: 'a connection accepted after one closed' });
    s.close();
    // ... and the refused attempts did not leak places: exactly one is free again.
    const again = await eventually(() => openSocket(env().url).catch(() => null), { what: 'a connection accepted' });
    try {
      await refuse();
    } finally {
      again.close();
      for (const p of peers) p.close();
    }
  });

  it('a session that never connects to the chat counts until --connect-timeout-secs closes it', async () => {
    // The previous test's connections are closed; wait until the server has them all back.
    const peers = [];
    for (let i = 0; i < 2; i++) peers.push(await eventually(() => env().connect().catch(() => null), { what: 'a connection' }));
    const bare = await handshake(env().url);
    assert.equal(bare.status, 200, 'a bare Engine.IO session opens');
    assertRefusedForAddress(await handshake(env().url));
    // Its place comes back once the server closes it for not connecting in time.
    const s = await eventually(() => openSocket(env().url).catch(() => null), { what: 'a connection accepted after the bare session timed out', ms: 8000 });
    s.close();
    for (const p of peers) p.close();
  });
});

/**
 * Whether the process `pid` still holds an open TCP socket whose peer is `clientPort` on
 * loopback (its file descriptors, matched to /proc/net/tcp by inode).
 */
function holdsConnectionFrom(pid, clientPort) {
  const inodes = new Set();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let link = '';
    try { link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
    if (link.startsWith('socket:[')) inodes.add(link.slice(8, -1));
  }
  return fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).some((line) => {
    const f = line.trim().split(/\s+/);
    return f.length > 9 && parseInt(f[2].split(':')[1], 16) === clientPort && inodes.has(f[9]);
  });
}

describe('slow receiver', { timeout: 120_000 }, () => {
  const env = serverFor([
    '--send-buffer-packets', 8,
    '--messages-per-second', 1000000, '--message-burst', 1000000,
    '--bytes-per-second', 1000000000000, '--byte-burst', 1000000000000,
  ]);

  it('a receiver that stops reading is disconnected; the others get everything in order and see leave "timeout"', async () => {
    const room = roomId();
    const [a, b, slow] = await env().connectMany(3, { dataPrefix: 4 });
    for (const p of [a, b, slow]) await p.join(room);
    const before = await env().metrics();
    const slowId = slow.id;

    // Stop reading from the slow receiver's TCP socket: the kernel buffers fill, then the
    // server's bounded queue for it.
    const tcp = slow.socket.io.engine.transport.ws._socket;
    const serverPid = env().server.proc.pid;
    assert.ok(holdsConnectionFrom(serverPid, tcp.localPort), 'the server holds the slow client\'s connection');
    tcp.pause();

    const size = 60 * 1024;
    const cut = (p) => p.events('presence', (e) => e.kind === 'leave' && e.member === slowId)[0];
    let sent = 0;
    for (; sent < 3000 && !cut(b); sent++) await a.send(room, indexed(sent, size));
    if (!cut(b)) {
      const m = await env().metrics();
      assert.fail(`the slow receiver was not cut off after ${sent} messages of ${size} bytes: no presence leave for it, `
        + `slow client still connected=${env().peers.has(slow) && !slow.events('$disconnect').length}, `
        + `streamchat_slow_receiver_disconnects_total=${metric(m, 'streamchat_slow_receiver_disconnects_total')}`);
    }
    for (let i = 0; i < 20; i++, sent++) await a.send(room, indexed(sent, size));

    const got = await b.waitCount('msg', sent, (m) => m.room === room, { ms: 30_000 });
    assert.deepEqual(got.map((m) => indexOf(m.data)), Array.from({ length: sent }, (_, i) => i),
      'a reading member got every message, in order');
    assert.ok(got.every((m) => m.dataLength === size));

    for (const p of [a, b]) {
      const e = await p.waitFor('presence', (x) => x.kind === 'leave' && x.member === slowId);
      assert.deepEqual({ room: e.room, reason: e.reason }, { room, reason: 'timeout' });
    }
    assert.ok(a.connected && b.connected, 'the others stay connected');

    // The server lets go of the cut-off connection (and the kernel's buffers behind it)
    // at once, not when a heartbeat would time out (45 s), even though it still reads nothing.
    await eventually(() => !holdsConnectionFrom(serverPid, tcp.localPort), { ms: 5000, what: 'the slow connection closed by the server' });

    // Once it reads again, the slow client finds itself disconnected.
    tcp.resume();
    await slow.waitDisconnect({ ms: 30_000 });

    const afterM = await env().metricsUntil((m) => metric(m, 'streamchat_slow_receiver_disconnects_total') >= 1, { what: 'slow receiver counter' });
    assert.equal(metric(afterM, 'streamchat_slow_receiver_disconnects_total') - metric(before, 'streamchat_slow_receiver_disconnects_total'), 1);
  });
});

describe('a receiver that stops reading for a while', { timeout: 120_000 }, () => {
  // Pings every 60 s: nothing but the server's own writer can get the backlog moving.
  // The queue may hold the whole backlog (4096 packets, 64 MiB): within its bounds, a
  // receiver that pauses loses nothing.
  const env = serverFor([
    '--send-buffer-packets', 4096, '--max-queued-bytes-per-connection', 64 * 1024 * 1024,
    '--ping-interval-secs', 60, '--ping-timeout-secs', 60,
    '--messages-per-second', 1000000, '--message-burst', 1000000,
    '--bytes-per-second', 1000000000000, '--byte-burst', 1000000000000,
  ]);

  it('gets the whole backlog, in order, as soon as it reads again', async () => {
    const room = roomId();
    const [a, paused] = await env().connectMany(2, { dataPrefix: 4 });
    for (const p of [a, paused]) await p.join(room);

    // More than the kernel's socket buffers hold on loopback, so the server's writes
    // block and the rest waits in its queue for this connection (4096 packets).
    const tcp = paused.socket.io.engine.transport.ws._socket;
    tcp.pause();
    const size = 60 * 1024;
    const count = 400; // 24 MiB
    for (let i = 0; i < count; i++) await a.send(room, indexed(i, size));
    await sleep(500);
    tcp.resume();

    const got = await paused.waitCount('msg', count, (m) => m.room === room, { ms: 20_000 });
    assert.deepEqual(got.map((m) => indexOf(m.data)), Array.from({ length: count }, (_, i) => i),
      'every message, in order');
    assert.ok(got.every((m) => m.dataLength === size));
    assert.ok(paused.connected, 'still connected');
  });
});

describe('a file sent faster than a receiver reads', { timeout: 60_000 }, () => {
  // 1 MiB chunks, 8 in flight, each sent as soon as an ack frees its place (as the
  // clients do), to a receiver that reads in bursts: its queue may hold 16 MiB (the
  // default), which the sender fills in well under one of its pauses. The server holds a
  // chunk's ack while a receiver has more than a quarter of its bound queued, so the
  // sender slows to that receiver's pace: nobody is cut off and nothing is lost. (Acked
  // as soon as queued, the chunks outran it and it was cut off as too slow.)
  const env = serverFor(['--bytes-per-second', 1000000000000, '--byte-burst', 1000000000000]);

  it('slows the sender to the slowest receiver; every chunk reaches everyone, in order', async () => {
    const room = roomId();
    const [sender, reader, bursty] = await env().connectMany(3, { dataPrefix: 8 });
    for (const p of [sender, reader, bursty]) await p.join(room);
    const before = await env().metrics();
    const tcp = bursty.socket.io.engine.transport.ws._socket;
    let sending = true;
    const reading = (async () => {
      while (sending) {
        tcp.pause();
        await sleep(300);
        tcp.resume();
        await sleep(100);
      }
    })();
    const CHUNK = 1024 * 1024;
    const N = 96;
    const file = fileId();
    const acks = [];
    let next = 0;
    const lane = async () => {
      while (next < N) {
        const k = next++;
        acks[k] = await sender.call('chunk', { room, file, seq: k, data: indexed(k, CHUNK) });
      }
    };
    await Promise.all(Array.from({ length: 8 }, lane));
    sending = false;
    await reading;
    tcp.resume();
    acks.forEach((ack, k) => assertOk(ack, `chunk ${k}`));
    for (const p of [reader, bursty]) {
      const got = await p.waitCount('chunk', N, (c) => c.room === room, { ms: 20_000 });
      assert.deepEqual(got.map((c) => indexOf(c.data)), Array.from({ length: N }, (_, k) => k), 'every chunk, in order');
    }
    assert.equal(reader.events('presence', (x) => x.kind === 'leave').length, 0, 'nobody left');
    assert.ok(bursty.connected && reader.connected && sender.connected, 'everyone still connected');
    const after = await env().metrics();
    assert.equal(metric(after, 'streamchat_slow_receiver_disconnects_total'), metric(before, 'streamchat_slow_receiver_disconnects_total'), 'nobody cut off');
    assert.ok(metric(after, 'streamchat_chunk_acks_held_total') > metric(before, 'streamchat_chunk_acks_held_total'), 'the sender was held back');
  });
});

describe('heartbeat', { timeout: 60_000 }, () => {
  const env = serverFor(['--ping-interval-secs', 1, '--ping-timeout-secs', 1, '--resume-grace-secs', 1]);

  it('a client that answers pings stays; one that stops is dropped: its room hears away, then leave "timeout" after the grace', async () => {
    const room = roomId();
    const [alive, silent] = await env().connectMany(2);
    for (const p of [alive, silent]) await p.join(room);

    // Several ping intervals: both answer (socket.io-client answers every ping).
    await sleep(3500);
    assert.ok(alive.connected && silent.connected, 'both still connected after 3 ping intervals');

    // The silent one stops answering pings. It still reads them, so its own ping timer
    // (which would close the connection from its side, as "disconnected") stays happy.
    const silentId = silent.id;
    const engine = silent.socket.io.engine;
    const sendPacket = engine._sendPacket.bind(engine);
    engine._sendPacket = (type, ...rest) => (type === 'pong' ? undefined : sendPacket(type, ...rest));
    const away = await alive.waitFor('presence', (x) => x.kind === 'away' && x.member === silentId, { ms: 10_000 });
    const e = await alive.waitFor('presence', (x) => x.kind === 'leave' && x.member === silentId, { ms: 10_000 });
    assert.deepEqual({ room: e.room, reason: e.reason }, { room, reason: 'timeout' });
    assert.ok(e.pos > away.pos, 'the leave comes after the away, in room order');
    assert.equal(e.at, away.at, 'the leave says when the connection dropped');
    assert.ok(alive.connected, 'the answering client stays connected');
  });
});
