// The hostile-input table of docs/security.md, one test per row, against one release
// binary on loopback while two honest members chat.
//
// Each row sends one kind of bad input and asserts the outcome a user (or operator)
// would see: an error code, an HTTP status, the one offending connection closed. After
// each row: the row's own connections are closed, the honest pair must still exchange a
// message (nothing lost for others), and the server's resident memory (VmRSS) is read
// before and after the row (and its peak during it). The figures are printed as the
// markdown table docs/security.md carries, and written to
// test-artifacts/hostile-table.md.
//
// The server runs with the defaults except --connect-timeout-secs 3 (so the slowloris
// rows take seconds, not tens of seconds). Rows that need many connections from one
// address use their own loopback source address (127.0.1.x), so the per-address caps
// they hit are not the honest members' (127.0.0.1).
//
// Run: cd tests && node --test --test-concurrency=1 hostile/table.test.mjs   (about 60 s)
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { Env, assertError, assertOk, bytes, indexed, indexOf, metric, openSocket, profile, roomId, sleep } from '../node/helpers.mjs';
import { runCli, startBot, stopBots } from '../cli/cli-harness.mjs';
import { RawClient } from './raw-client.mjs';

const CONNECT_TIMEOUT_S = 3;
const MAX_CONNECTIONS_PER_IP = 64; // the default
const TCP_PER_IP = 2 * MAX_CONNECTIONS_PER_IP + 16; // accept.rs tcp_per_ip
const LARGEST_PACKET = 1024 * 1024 + 64 * 1024; // the default largest chunk plus 64 KiB of header
const ARGS = ['--connect-timeout-secs', CONNECT_TIMEOUT_S];

function rssKiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  return Number(m[1]);
}
const mib = (kib) => (kib / 1024).toFixed(1);

let env;
let port;
/** Everything a row opened, closed after it. */
const opened = new Set();
const track = (x) => { opened.add(x); return x; };

/** A TCP connection from `localAddress`; `closed` resolves with the ms it stayed open. */
function tcp(localAddress = '127.0.0.1') {
  const t0 = Date.now();
  const s = net.connect({ host: '127.0.0.1', port, localAddress });
  s.on('error', () => {});
  s.closedAfter = new Promise((resolve) => s.once('close', () => resolve(Date.now() - t0)));
  s.connected = new Promise((resolve) => s.once('connect', resolve));
  return track({ close: () => s.destroy(), s });
}

/** A bare WebSocket to the Engine.IO endpoint (frames exactly as given). */
async function rawWs(query = 'EIO=4&transport=websocket', opts = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?${query}`, { maxPayload: 64 * 1024 * 1024, ...opts });
  const c = track({ ws, close: () => ws.terminate(), frames: [] });
  ws.on('message', (d, isBinary) => c.frames.push(isBinary ? d : d.toString()));
  ws.on('error', () => {});
  c.closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
  });
  return c;
}

/** Resolves true if `closed` settles within `ms`. */
async function closesWithin(closed, ms) {
  let timer;
  const r = await Promise.race([closed.then(() => true), new Promise((resolve) => { timer = setTimeout(() => resolve(false), ms); })]);
  clearTimeout(timer);
  return r;
}

async function raw() {
  const c = await RawClient.connect(env.url);
  return track(c);
}

async function peer(opts) {
  const p = await env.connect(opts);
  env.peers.delete(p);
  return track(p);
}

/** A plain HTTP request: {status, body}; `error` when the connection was cut instead. */
function request(path, { method = 'GET', headers = {}, body, localAddress } = {}) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve({ error: e.code ?? e.message }));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Opens a long-polling session; resolves with its sid. */
async function pollingSession() {
  const r = await request('/socket.io/?EIO=4&transport=polling');
  assert.equal(r.status, 200, `polling handshake: ${JSON.stringify(r)}`);
  return JSON.parse(r.body.slice(1)).sid;
}
const pollPath = (sid) => `/socket.io/?EIO=4&transport=polling&sid=${sid}`;

/** An Engine.IO error body `{code, message}`. */
const eioError = (r) => { try { return JSON.parse(r.body); } catch { return {}; } };

const placeholder = (num) => `{"_placeholder":true,"num":${num}}`;

/** The connection still answers: leaving a room it is not in is `not_member`. */
async function assertAnswers(c) {
  const [ack] = await c.request('leave', JSON.stringify({ room: roomId() }));
  assertError(ack, 'not_member');
}

/** The server closes `c` within 3 s. */
async function closedBy(c) {
  assert.ok(await c.closesWithin(3000), 'closed');
  return 'closed';
}

/** A row: 10,000 copies of an Engine.IO packet the server ignores. */
function ignoredFlood(input, packet, expected) {
  return {
    input,
    expected,
    async run() {
      const c = await raw();
      for (let i = 0; i < 10_000; i++) c.sendText(packet);
      await assertAnswers(c);
      return 'ignored; still answering';
    },
  };
}

/** A row: a request Engine.IO refuses with HTTP 400 and its error `code`. */
function engineIoRefusal(input, path, code, message) {
  return {
    input,
    expected: `HTTP 400, Engine.IO error ${code} "${message}"`,
    async run() {
      const r = await request(path);
      assert.equal(r.status, 400);
      assert.deepEqual(eioError(r), { code, message });
      return `HTTP 400 ${r.body}`;
    },
  };
}

/**
 * The rows: `input` (what is sent), `expected` (what must happen), `run` (does it and
 * asserts; returns a short observation for the table).
 */
const ROWS = [
  // --- TCP and HTTP ------------------------------------------------------------------
  {
    input: '100 TCP connections that never send a byte',
    expected: `each closed by the server after --connect-timeout-secs (${CONNECT_TIMEOUT_S} s here, 10 s by default)`,
    async run() {
      const conns = Array.from({ length: 100 }, () => tcp('127.0.1.1'));
      const ms = await Promise.all(conns.map((c) => c.s.closedAfter));
      assert.ok(ms.every((t) => t >= CONNECT_TIMEOUT_S * 1000 - 200 && t < CONNECT_TIMEOUT_S * 1000 + 2000), `closed after ${Math.min(...ms)}–${Math.max(...ms)} ms`);
      return `all closed after ${Math.min(...ms)}–${Math.max(...ms)} ms`;
    },
  },
  {
    input: 'slowloris: 50 connections sending one header line every 500 ms, never ending the request',
    expected: 'each closed when its headers are not complete within the connect timeout',
    async run() {
      const conns = Array.from({ length: 50 }, () => tcp('127.0.1.2'));
      await Promise.all(conns.map((c) => c.s.connected));
      for (const c of conns) c.s.write('GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n');
      const timer = setInterval(() => { for (const c of conns) if (!c.s.destroyed) c.s.write('X-Slow: 1\r\n'); }, 500);
      const ms = await Promise.all(conns.map((c) => c.s.closedAfter));
      clearInterval(timer);
      assert.ok(ms.every((t) => t < CONNECT_TIMEOUT_S * 1000 + 2000), `closed after ${Math.min(...ms)}–${Math.max(...ms)} ms`);
      return `all closed after ${Math.min(...ms)}–${Math.max(...ms)} ms`;
    },
  },
  {
    input: `${TCP_PER_IP + 56} TCP connections at once from one address`,
    expected: `${TCP_PER_IP} held (2 × --max-connections-per-ip + 16), the rest closed at accept; other addresses unaffected`,
    async run() {
      const before = metric(await env.metrics(), 'streamchat_tcp_refused_total');
      const conns = Array.from({ length: TCP_PER_IP + 56 }, () => tcp('127.0.1.3'));
      // Connects beyond the listen backlog are retried by the kernel: wait until all
      // were accepted (held or closed).
      await env.metricsUntil((m) => metric(m, 'streamchat_tcp_refused_total') - before >= 56, { ms: 10_000, what: '56 refusals' });
      await sleep(500);
      const closedEarly = (await Promise.all(conns.map((c) => closesWithin(c.s.closedAfter, 0)))).filter(Boolean).length;
      const refused = metric(await env.metrics(), 'streamchat_tcp_refused_total') - before;
      assert.equal(refused, 56, `refused at accept: ${refused}`);
      assert.equal(closedEarly, 56, `closed at once: ${closedEarly}`);
      const other = await request('/health', { localAddress: '127.0.1.4' });
      assert.equal(other.status, 200, 'another address is served meanwhile');
      return `${conns.length - closedEarly} held, ${closedEarly} closed at accept (metric +${refused}); another address served`;
    },
  },
  {
    input: '1 MiB of request headers',
    expected: 'HTTP 431 or the connection closed; nothing kept',
    async run() {
      const r = await request('/socket.io/?EIO=4&transport=polling', { headers: { 'x-big': 'a'.repeat(1024 * 1024) } });
      assert.ok(r.status === 431 || r.error, `answer: ${JSON.stringify(r).slice(0, 200)}`);
      return r.status ? `HTTP ${r.status}` : `connection cut (${r.error})`;
    },
  },
  engineIoRefusal('Engine.IO version 3 (`EIO=3`)', '/socket.io/?EIO=3&transport=polling', '5', 'Unsupported protocol version'),
  engineIoRefusal('an unknown transport (`transport=carrier-pigeon`)', '/socket.io/?EIO=4&transport=carrier-pigeon', '0', 'Transport unknown'),
  engineIoRefusal('long-polling with a made-up sid', pollPath('AAAAAAAAAAAAAAAAAAAA'), '1', 'Session ID unknown'),
  {
    input: "polling with another session's sid while it polls (two GETs at once)",
    expected: 'the overlapping GET is refused (HTTP 400) and that one session is closed, as Engine.IO requires; no other session is touched',
    async run() {
      const sid = await pollingSession();
      assert.equal((await request(pollPath(sid), { method: 'POST', body: '40' })).status, 200);
      assert.equal((await request(pollPath(sid))).status, 200, 'the CONNECT answer'); // now nothing is pending
      // The second GET goes out while the first waits. A first GET answered before that
      // (the server had a packet to send after all) overlapped nothing: poll again.
      let first;
      let second;
      const early = [];
      while (!second) {
        let answered = false;
        const pending = request(pollPath(sid)).then((r) => { answered = true; return r; });
        await sleep(100);
        if (answered && early.length < 5) {
          early.push(await pending);
          continue;
        }
        [first, second] = await Promise.all([pending, request(pollPath(sid))]);
      }
      const statuses = [first.status, second.status].sort();
      assert.ok(
        statuses.includes(400),
        `one of the two GETs refused: ${JSON.stringify({ first, second, answeredAtOnce: early })}`,
      );
      const afterwards = await request(pollPath(sid));
      assert.equal(afterwards.status, 400, 'the session is closed');
      return `GETs answered ${first.status} and ${second.status}; the session is then unknown (400)`;
    },
  },
  {
    input: 'a WebSocket upgrade naming a made-up sid',
    expected: 'refused (HTTP 400); no session opened',
    async run() {
      const before = metric(await env.metrics(), 'streamchat_sessions');
      const err = await rawWs('EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA').then(() => null, (e) => e);
      assert.ok(err, 'the upgrade is refused');
      assert.equal(metric(await env.metrics(), 'streamchat_sessions'), before);
      return `refused (${err.status ? `HTTP ${err.status}` : err.message})`;
    },
  },
  {
    input: 'a 2 MiB long-polling POST (the limit is the largest packet, 1,088 KiB)',
    expected: 'HTTP 413; the session is closed',
    async run() {
      const sid = await pollingSession();
      const r = await request(pollPath(sid), { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024) });
      assert.ok(r.status === 413 || r.error, `answer: ${JSON.stringify(r).slice(0, 200)}`);
      return r.status ? `HTTP ${r.status}` : `connection cut (${r.error})`;
    },
  },
  {
    input: 'invalid UTF-8 in a long-polling POST',
    expected: 'HTTP 400; the session is closed',
    async run() {
      const sid = await pollingSession();
      const r = await request(pollPath(sid), { method: 'POST', body: Buffer.from([0x34, 0x30, 0xff, 0xfe]) });
      assert.equal(r.status, 400);
      assert.equal((await request(pollPath(sid))).status, 400, 'the session is closed');
      return 'HTTP 400, then the sid is unknown';
    },
  },
  // --- WebSocket frames ----------------------------------------------------------------
  {
    input: 'invalid UTF-8 in a WebSocket text frame',
    expected: 'that connection closed',
    async run() {
      const c = await raw();
      c.ws.send(Buffer.from([0x34, 0x32, 0xff, 0xfe]), { binary: false });
      return closedBy(c);
    },
  },
  {
    input: `a text frame of ${LARGEST_PACKET + 1024} bytes`,
    expected: 'that connection closed (message too big)',
    async run() {
      const c = await raw();
      c.sendText(`42["msg",{"room":"${'A'.repeat(LARGEST_PACKET + 1024)}"}]`);
      return closedBy(c);
    },
  },
  {
    input: `a binary attachment of ${LARGEST_PACKET + 1024} bytes`,
    expected: 'that connection closed',
    async run() {
      const c = await raw();
      c.sendText(`451-["msg",{"room":"${roomId()}","data":${placeholder(0)}}]`);
      c.ws.send(Buffer.alloc(LARGEST_PACKET + 1024), { binary: true });
      return closedBy(c);
    },
  },
  {
    input: 'a fragment bomb: one message in 64 KiB continuation frames, 40 of them (2.5 MiB)',
    expected: 'that connection closed once the fragments pass the message limit; the rest is never buffered',
    async run() {
      const c = await raw();
      const part = Buffer.alloc(64 * 1024, 0x41);
      let sent = 0;
      for (; sent < 40 && !c.isClosed; sent++) {
        c.ws.send(part, { binary: false, fin: false });
        await sleep(2);
      }
      assert.ok(await c.closesWithin(3000), 'closed');
      return `closed (after ${sent} fragments written)`;
    },
  },
  {
    input: '20,000 fragments of 1 byte, then the end of the message',
    expected: 'read as one message (a 20,000-byte event, unknown: `bad_request`); the connection stays up',
    async run() {
      const c = await raw();
      const head = Buffer.from('421["x",');
      c.ws.send(head, { binary: false, fin: false });
      for (let i = 0; i < 20_000; i++) c.ws.send(Buffer.from(' '), { fin: false });
      c.ws.send(Buffer.from('{}]'), { fin: true });
      const deadline = Date.now() + 5000;
      while (!c.packets.some((p) => p.startsWith('31[')) && Date.now() < deadline) await sleep(20);
      const ack = c.packets.find((p) => p.startsWith('31['));
      assert.ok(ack && JSON.parse(ack.slice(2))[0].error.code === 'bad_request', `ack: ${ack}`);
      assert.equal(c.isClosed, false);
      return 'answered bad_request, connection up';
    },
  },
  {
    input: 'permessage-deflate offered by the client',
    expected: 'not negotiated: the server never inflates, so there is no compression bomb',
    async run() {
      const c = await rawWs('EIO=4&transport=websocket', { perMessageDeflate: true });
      assert.equal(c.ws.extensions, '', 'no extension agreed');
      return `extensions agreed: ${JSON.stringify(c.ws.extensions)}`;
    },
  },
  {
    input: '10,000 WebSocket ping frames (125 bytes each) from a client that does not read',
    expected: 'answered (one pong pending at a time), nothing piles up; the connection stays up',
    async run() {
      const c = await raw();
      c.ws._socket.pause();
      for (let i = 0; i < 10_000; i++) c.ws.ping(Buffer.alloc(125, i % 256));
      await sleep(500);
      assert.equal(c.isClosed, false);
      c.ws._socket.resume();
      await assertAnswers(c);
      return 'still up and answering';
    },
  },
  ignoredFlood('10,000 Engine.IO ping packets (`2`) from the client', '2', 'ignored (in Engine.IO 4 the server pings); the connection stays up'),
  ignoredFlood('10,000 unsolicited Engine.IO pongs (`3`)', '3', 'ignored; the connection stays up'),
  {
    input: 'an unknown Engine.IO packet type (`9`)',
    expected: 'that connection closed',
    async run() {
      const c = await raw();
      c.sendText('9hello');
      return closedBy(c);
    },
  },
  // --- Socket.IO packets ---------------------------------------------------------------
  {
    input: 'CONNECT to a 10,000-character namespace',
    expected: 'CONNECT_ERROR for that namespace; the connection stays up',
    async run() {
      const c = await raw();
      c.sendText(`40/${'n'.repeat(10_000)},`);
      const deadline = Date.now() + 3000;
      while (!c.packets.some((p) => p.startsWith('4/')) && Date.now() < deadline) await sleep(20);
      assert.ok(c.packets.some((p) => p.startsWith('4/')), 'CONNECT_ERROR');
      await assertAnswers(c);
      return 'CONNECT_ERROR; still answering on /';
    },
  },
  {
    input: 'a binary packet announcing 10¹² attachments',
    expected: 'that connection closed; nothing allocated for them',
    async run() {
      const c = await raw();
      c.sendText(`451000000000000-["msg",{"data":${placeholder(0)}}]`);
      return closedBy(c);
    },
  },
  {
    input: 'a binary packet announcing 100,000 attachments, then 100,000 one-byte frames',
    expected: 'bounded: answered bad_request (data must be one attachment) or closed; memory bounded by the packet limit',
    async run() {
      const c = await raw();
      const N = 100_000;
      c.sendText(`45${N}-1["msg",{"room":"${roomId()}","data":${placeholder(0)}}]`);
      const one = Buffer.from([1]);
      for (let i = 0; i < N && !c.isClosed; i++) {
        c.ws.send(one, { binary: true });
        if (i % 5000 === 4999) await sleep(1);
      }
      const deadline = Date.now() + 10_000;
      while (!c.isClosed && !c.packets.some((p) => p.startsWith('31[')) && Date.now() < deadline) await sleep(20);
      const ack = c.packets.find((p) => p.startsWith('31['));
      assert.ok(c.isClosed || ack, 'answered or closed');
      if (ack) assert.notEqual(JSON.parse(ack.slice(2))[0].ok, true, `not accepted: ${ack}`);
      return c.isClosed ? 'closed' : `answered ${JSON.parse(ack.slice(2))[0].error?.code}`;
    },
  },
  {
    input: 'an event name of 100,000 characters, with an ack id',
    expected: '`bad_request` "unknown event"; the connection stays up',
    async run() {
      const c = await raw();
      const [ack] = await c.request('e'.repeat(100_000), '{}');
      assertError(ack, 'bad_request');
      return 'bad_request';
    },
  },
  {
    input: 'an event name that is a number',
    expected: 'that connection closed (unreadable packet)',
    async run() {
      const c = await raw();
      c.request('x', '{}', { eventText: '123' }).catch(() => {});
      return closedBy(c);
    },
  },
  {
    input: 'a payload nested 10,000 arrays deep',
    expected: '`bad_request`; no stack overflow; the connection stays up',
    async run() {
      const c = await raw();
      const [ack] = await c.request('join', `${'['.repeat(10_000)}${']'.repeat(10_000)}`);
      assertError(ack, 'bad_request');
      return 'bad_request';
    },
  },
  {
    input: '50,001 numbers as message data (a JSON array instead of bytes)',
    expected: '`bad_request`; nothing relayed',
    async run() {
      const c = await raw();
      const room = roomId();
      assertOk((await c.request('join', JSON.stringify({ room, profile: profile() })))[0]);
      const [ack] = await c.request('msg', `{"room":"${room}","data":[${'7,'.repeat(50_000)}7]}`);
      assertError(ack, 'bad_request');
      return 'bad_request';
    },
  },
  // --- The chat's own requests ---------------------------------------------------------
  {
    input: 'one socket joining 10,000 rooms (pipelined, 200 at a time)',
    expected: '16 joined (--max-rooms-per-connection), 9,984 `too_many_rooms`; every request answered',
    async run() {
      const c = await raw();
      // In batches of 200, inside the 256 answers a connection's send queue holds (a
      // client that pipelines more than that is cut off: hostile.test.mjs).
      const acks = [];
      for (let i = 0; i < 50; i++) {
        acks.push(...await Promise.all(Array.from({ length: 200 }, () => c.request('join', JSON.stringify({ room: roomId(), profile: profile() })))));
      }
      const ok = acks.filter(([a]) => a.ok).length;
      const tooMany = acks.filter(([a]) => a.error?.code === 'too_many_rooms').length;
      assert.equal(ok, 16);
      assert.equal(tooMany, 10_000 - 16);
      return `${ok} ok, ${tooMany} too_many_rooms`;
    },
  },
  {
    input: 'join/leave churn: 1,000 join-leave pairs on one room, awaited',
    expected: 'every request `ok`; a watcher sees join and leave strictly alternate',
    async run() {
      const room = roomId();
      const [watcher, churner] = [await peer(), await peer()];
      await watcher.join(room);
      for (let i = 0; i < 1000; i++) {
        assertOk(await churner.call('join', { room, profile: profile() }));
        assertOk(await churner.call('leave', { room }));
      }
      const kinds = await watcher.until((w) => {
        const k = w.events('presence', (p) => p.room === room && p.member === churner.id).map((p) => p.kind);
        return k.length >= 2000 && k;
      }, { ms: 15_000, what: '2,000 presence events' });
      assert.ok(kinds.every((k, i) => k === (i % 2 === 0 ? 'join' : 'leave')));
      return '2,000 ok; 2,000 presence events, alternating';
    },
  },
  {
    input: '1,000 pipelined messages (burst 40, 20 per second)',
    expected: 'each answered `ok` or `rate_limited`; exactly the accepted ones relayed, in order',
    async run() {
      const room = roomId();
      const [flooder, reader] = [await peer(), await peer()];
      await flooder.join(room);
      await reader.join(room);
      const acks = await Promise.all(Array.from({ length: 1000 }, (_, i) => flooder.call('msg', { room, data: indexed(i, 64) })));
      const accepted = acks.map((a, i) => (a.ok ? i : -1)).filter((i) => i >= 0);
      assert.ok(acks.every((a) => a.ok || a.error?.code === 'rate_limited'));
      const got = await reader.until((r) => {
        const l = r.events('msg', (m) => m.room === room);
        return l.length >= accepted.length && l;
      }, { what: 'the accepted messages' });
      assert.deepEqual(got.map((m) => indexOf(m.data)), accepted);
      return `${accepted.length} ok, ${1000 - accepted.length} rate_limited; reader got the ${accepted.length}, in order`;
    },
  },
  {
    input: 'a `msg` with forged `from` and `member` fields',
    expected: 'the fields are ignored: receivers see the real sender',
    async run() {
      const room = roomId();
      const [liar, victim, reader] = [await peer(), await peer(), await peer()];
      for (const p of [liar, victim, reader]) await p.join(room);
      assertOk(await liar.call('msg', { room, data: bytes(8), from: victim.id, member: victim.id }));
      const m = await reader.waitFor('msg', (x) => x.room === room);
      assert.equal(m.from, liar.id);
      return 'relayed with the real sender id';
    },
  },
  {
    input: 'a direct message `to` a member of another room',
    expected: '`not_member`; nothing delivered',
    async run() {
      const [a, b] = [await peer(), await peer()];
      const [roomA, roomB] = [roomId(), roomId()];
      await a.join(roomA);
      await b.join(roomB);
      assertError(await a.call('msg', { room: roomA, data: bytes(8), to: b.id }), 'not_member');
      await sleep(200);
      assert.equal(b.events('msg').length, 0);
      return 'not_member; nothing delivered';
    },
  },
  {
    input: "`resume` with another member's id and a made-up token",
    expected: "`resume_failed`; the victim keeps its place and its messages",
    async run() {
      const room = roomId();
      const [victim, thief, sender] = [await peer(), await peer(), await peer()];
      const joined = await victim.join(room);
      await sender.join(room);
      const ack = await thief.call('resume', { room, member: victim.id, token: 'A'.repeat(43), epoch: joined.epoch, pos: 0 });
      assertError(ack, 'resume_failed');
      assertOk(await sender.call('msg', { room, data: bytes(8) }));
      await victim.waitFor('msg', (m) => m.room === room);
      assert.equal(thief.events('msg').length, 0);
      return 'resume_failed; the victim still receives';
    },
  },
  {
    input: "`resume` with another member's id and the attacker's own valid token",
    expected: '`resume_failed` (a token is bound to its member and room)',
    async run() {
      const room = roomId();
      const [victim, thief] = [await peer(), await peer()];
      const v = await victim.join(room);
      const t = await thief.join(room);
      const ack = await thief.call('resume', { room, member: victim.id, token: t.token, epoch: v.epoch, pos: 0 });
      assertError(ack, 'resume_failed');
      assert.ok(victim.connected);
      return 'resume_failed';
    },
  },
  {
    input: 'a resume token replayed after it was used (the ack rotates it)',
    expected: '`resume_failed`',
    async run() {
      const room = roomId();
      const first = await peer({ io: { reconnection: false } });
      const joined = await first.join(room);
      const member = first.id;
      first.socket.io.engine.transport.ws._socket.destroy(); // a lost connection, not a leave
      await sleep(300);
      const second = await peer();
      const resumed = await second.call('resume', { room, member, token: joined.token, epoch: joined.epoch, pos: joined.pos ?? 0 });
      assertOk(resumed, 'the first resume');
      const third = await peer();
      assertError(await third.call('resume', { room, member, token: joined.token, epoch: joined.epoch, pos: 0 }), 'resume_failed');
      return 'first use ok; replay resume_failed';
    },
  },
  {
    input: 'a message resent with the same client id, 20 times',
    expected: 'the first relayed, the rest acked `duplicate`; receivers get it once',
    async run() {
      const room = roomId();
      const [sender, reader] = [await peer(), await peer()];
      await sender.join(room);
      await reader.join(room);
      const acks = [];
      for (let i = 0; i < 20; i++) acks.push(await sender.call('msg', { room, data: bytes(8), id: 'same-client-id' }));
      assert.ok(acks.every((a) => a.ok));
      assert.equal(acks.filter((a) => a.duplicate).length, 19);
      await sleep(300);
      assert.equal(reader.events('msg', (m) => m.room === room).length, 1);
      return '1 relayed, 19 duplicate';
    },
  },
  {
    input: "another member's sealed message replayed as one's own",
    expected: 'relayed (the server cannot tell), but no client shows it: it does not open as the replayer',
    async run() {
      const { stdout } = await runCli(['room', 'new', '--server', env.url, '--kind', 'v1']);
      const link = stdout.trim();
      const alice = startBot(link, 'Alice');
      const ready = await alice.next('ready');
      const bob = startBot(link, 'Bob');
      await bob.next('ready');
      const mallory = await peer();
      await mallory.join(ready.room);
      alice.send('meet at noon');
      await bob.next((e) => e.event === 'message' && e.text === 'meet at noon');
      const sealed = await mallory.waitFor('msg', (m) => m.room === ready.room && m.from !== mallory.id);
      assertOk(await mallory.call('msg', { room: ready.room, data: sealed.data }));
      const warning = await bob.next((e) => e.event === 'warning' || (e.event === 'message' && e.text === 'meet at noon'));
      assert.equal(warning.event, 'warning', `the replay is not shown as a message: ${JSON.stringify(warning)}`);
      alice.end();
      bob.end();
      await stopBots();
      return `relayed; the receiving client warns ("${warning.message.slice(0, 60)}")`;
    },
  },
];

describe('the hostile-input table', { timeout: 300_000 }, () => {
  let honest;
  const results = [];

  before(async () => {
    env = await Env.start(ARGS);
    port = Number(new URL(env.url).port);
    const room = roomId();
    const [a, b] = await env.roomOf(2, room);
    honest = { a, b, room, sent: 0 };
  });

  after(async () => {
    const lines = [
      '| # | input | expected | observed | RSS before → after (peak), MiB | test |',
      '|---|---|---|---|---|---|',
      ...results.map((r, i) => `| ${i + 1} | ${r.input} | ${r.expected} | ${r.observed} | ${r.rss} | \`table.test.mjs\` ${i + 1} |`),
    ];
    const text = `${lines.join('\n')}\n`;
    // eslint-disable-next-line no-console
    console.log(text);
    try {
      mkdirSync(new URL('../../test-artifacts/', import.meta.url), { recursive: true });
      writeFileSync(new URL('../../test-artifacts/hostile-table.md', import.meta.url), text);
    } catch { /* figures only */ }
    for (const x of opened) x.close();
    await stopBots();
    await env?.stop();
  });

  for (const row of ROWS) {
    it(row.input, async () => {
      const pid = env.server.proc.pid;
      const before = rssKiB(pid);
      let peak = before;
      const sampler = setInterval(() => { try { peak = Math.max(peak, rssKiB(pid)); } catch { /* gone */ } }, 20);
      let observed;
      try {
        observed = await row.run();
      } finally {
        clearInterval(sampler);
        for (const x of opened) x.close();
        opened.clear();
      }
      // Nothing lost for others: the honest pair still talks, and nobody left.
      const n = honest.sent++;
      assertOk(await honest.a.call('msg', { room: honest.room, data: indexed(n, 32) }), 'the honest member can still send');
      await honest.b.waitFor('msg', (m) => m.room === honest.room && indexOf(m.data) === n, { what: 'the honest message' });
      assert.equal(honest.b.events('presence', (p) => p.room === honest.room && p.kind === 'leave').length, 0);
      assert.ok(env.server.proc.exitCode === null, 'the server is up');
      await sleep(300);
      const afterKiB = rssKiB(pid);
      peak = Math.max(peak, afterKiB);
      results.push({ input: row.input, expected: row.expected, observed, rss: `${mib(before)} → ${mib(afterKiB)} (${mib(peak)})` });
    });
  }
});
