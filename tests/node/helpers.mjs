// Shared helpers for the black-box Node tests of the streamchat server.
// Not a test file itself (the runner only picks up *.test.mjs).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { io } from 'socket.io-client';
import { startServer } from '../harness.mjs';

export { sleep };

// ---------------------------------------------------------------------------------------
// Identifiers and payloads
// ---------------------------------------------------------------------------------------

/** A random room id: 16 random bytes as 22 base64url characters. */
export const roomId = () => randomBytes(16).toString('base64url');
/** A random file id: 16 base64url characters. */
export const fileId = () => randomBytes(12).toString('base64url');
/** A random "sealed profile": base64url without padding. */
export const profile = (bytes = 48) => randomBytes(bytes).toString('base64url');
/** Random "sealed" bytes. */
export const bytes = (n) => randomBytes(n);

/** Binary `data` as received in Node (Buffer, ArrayBuffer or a typed array) → Buffer. */
export function toBuf(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`expected binary data, got ${typeof data}: ${JSON.stringify(data)?.slice(0, 80)}`);
}

/** True if `data` is a binary value (as socket.io-client hands binary attachments to Node code). */
export function isBinary(data) {
  return Buffer.isBuffer(data) || data instanceof ArrayBuffer || ArrayBuffer.isView(data);
}

/** Bytes whose first 4 bytes are `index` (big endian) followed by random filler, `size` long. */
export function indexed(index, size = 16) {
  const b = randomBytes(Math.max(size, 4));
  b.writeUInt32BE(index, 0);
  return b;
}
export const indexOf = (data) => toBuf(data).readUInt32BE(0);

/** Asserts that a server time (`at`/`ts`) is an integer number of ms close to now. */
export function assertServerTime(value, what = 'time', slackMs = 10_000) {
  assert.equal(typeof value, 'number', `${what} must be a number, got ${JSON.stringify(value)}`);
  assert.ok(Number.isInteger(value), `${what} must be an integer number of ms, got ${value}`);
  const now = Date.now();
  assert.ok(Math.abs(now - value) <= slackMs, `${what}=${value} is not close to now (${now})`);
}

// ---------------------------------------------------------------------------------------
// Acks
// ---------------------------------------------------------------------------------------

/** Asserts an ack is `{ok:false, error:{code, message}}` with the given code. */
export function assertError(ack, code, context = '') {
  const where = context ? ` (${context})` : '';
  assert.ok(ack && typeof ack === 'object', `ack must be an object${where}, got ${JSON.stringify(ack)}`);
  assert.equal(ack.ok, false, `expected ok:false${where}, got ${JSON.stringify(ack)}`);
  assert.ok(ack.error && typeof ack.error === 'object', `ack.error must be an object${where}: ${JSON.stringify(ack)}`);
  assert.equal(ack.error.code, code, `expected error code ${code}${where}, got ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error.message, 'string', `error.message must be a string${where}: ${JSON.stringify(ack)}`);
}

/** Asserts an ack is `{ok:true, ...}`. */
export function assertOk(ack, context = '') {
  const where = context ? ` (${context})` : '';
  assert.ok(ack && typeof ack === 'object', `ack must be an object${where}, got ${JSON.stringify(ack)}`);
  assert.equal(ack.ok, true, `expected ok:true${where}, got ${JSON.stringify(ack)}`);
}

// ---------------------------------------------------------------------------------------
// Peers: a socket.io-client socket with an event log
// ---------------------------------------------------------------------------------------

/** Short, log-friendly rendering of an event payload (binary shown by length). */
function brief(payload) {
  return JSON.stringify(payload, (k, v) => {
    if (v && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data)) return `<${v.data.length} bytes>`;
    if (v instanceof ArrayBuffer) return `<${v.byteLength} bytes>`;
    return v;
  })?.slice(0, 200);
}

export class Peer {
  /**
   * @param {import('socket.io-client').Socket} socket
   * @param {{dataPrefix?: number}} opts dataPrefix: keep only the first N bytes of received
   *   binary `data` (to bound memory in flood tests); the full length goes to `dataLength`.
   */
  constructor(socket, { dataPrefix } = {}) {
    this.socket = socket;
    /** Every server→client event in arrival order: {event, payload}. Disconnects appear as `$disconnect`. */
    this.log = [];
    this.watchers = new Set();
    socket.onAny((event, payload) => {
      if (dataPrefix !== undefined && payload && isBinary(payload.data)) {
        const full = toBuf(payload.data);
        payload = { ...payload, data: Buffer.from(full.subarray(0, dataPrefix)), dataLength: full.length };
      }
      this.record(event, payload);
    });
    socket.on('disconnect', (reason) => this.record('$disconnect', { reason }));
  }

  record(event, payload) {
    this.log.push({ event, payload });
    for (const w of [...this.watchers]) w();
  }

  get id() { return this.socket.id; }
  get connected() { return this.socket.connected; }

  /** Payloads of logged events named `event` (optionally filtered). */
  events(event, pred = () => true) {
    return this.log.filter((e) => e.event === event && pred(e.payload)).map((e) => e.payload);
  }

  /** The last `n` logged events, one line each (for failure messages). */
  lastEvents(n) {
    return this.log.slice(-n).map((e) => `${e.event} ${brief(e.payload)}`);
  }

  /** Waits until `check(peer)` returns a truthy value (re-evaluated on every event) and returns it. */
  until(check, { ms = 5000, what = 'condition' } = {}) {
    return new Promise((resolve, reject) => {
      let timer;
      const attempt = () => {
        let result;
        try { result = check(this); } catch (err) { cleanup(); reject(err); return true; }
        if (result) { cleanup(); resolve(result); return true; }
        return false;
      };
      const cleanup = () => { clearTimeout(timer); this.watchers.delete(attempt); };
      if (attempt()) return;
      this.watchers.add(attempt);
      timer = setTimeout(() => {
        cleanup();
        const tail = this.lastEvents(5).join('\n  ');
        reject(new Error(`peer ${this.id ?? '(unconnected)'}: timed out after ${ms} ms waiting for ${what}; last events:\n  ${tail}`));
      }, ms);
    });
  }

  /** Waits for the first logged `event` whose payload matches `pred` (also ones already logged). */
  waitFor(event, pred = () => true, { ms = 5000, what } = {}) {
    return this.until((p) => p.events(event, pred)[0], { ms, what: what ?? `event ${event}` });
  }

  /** Waits until at least `n` `event`s matching `pred` were logged; resolves with them. */
  waitCount(event, n, pred = () => true, { ms = 5000 } = {}) {
    return this.until((p) => { const l = p.events(event, pred); return l.length >= n && l; }, { ms, what: `${n} × ${event}` });
  }

  /** Waits for this peer's socket to be disconnected; resolves with the reason. */
  waitDisconnect({ ms = 5000 } = {}) {
    return this.waitFor('$disconnect', () => true, { ms, what: 'disconnect' }).then((p) => p.reason);
  }

  /** emitWithAck with a timeout (a missing ack is a failure, not a hang). */
  call(event, ...args) {
    const t0 = Date.now();
    return this.socket.timeout(ACK_MS).emitWithAck(event, ...args).catch((err) => {
      throw new Error(`no ack for ${event} ${brief(args[0])} from ${this.id} within ${Date.now() - t0} ms `
        + `(connected=${this.connected}): ${err.message}`);
    });
  }

  /** Joins `room` and asserts a successful ack; resolves with the ack. */
  async join(room, prof = profile()) {
    const ack = await this.call('join', { room, profile: prof });
    assertOk(ack, `join ${room}`);
    return ack;
  }

  async leave(room) {
    const ack = await this.call('leave', { room });
    assertOk(ack, `leave ${room}`);
    return ack;
  }

  /** Sends a message and asserts a successful ack; resolves with the ack. */
  async send(room, data, extra = {}) {
    const ack = await this.call('msg', { room, data, ...extra });
    assertOk(ack, `msg to ${room}`);
    return ack;
  }

  close() { this.socket.close(); }
}

export const ACK_MS = 5000;

/** Opens a socket.io-client connection; resolves with the socket once connected, rejects on connect_error. */
export function openSocket(url, opts = {}) {
  const socket = io(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    ...opts,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.close(); reject(new Error('connect timed out')); }, 8000);
    socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
    socket.once('connect_error', (err) => { clearTimeout(timer); socket.close(); reject(err); });
  });
}

/**
 * A bare Engine.IO polling handshake, as any HTTP client can send it: resolves to
 * `{status, retryAfter, body}` (`body` parsed when it is JSON). `localAddress` picks the
 * loopback source address (127.0.0.0/8).
 */
export function handshake(url, { headers = {}, localAddress } = {}) {
  const target = new URL('/socket.io/?EIO=4&transport=polling', url);
  return new Promise((resolve, reject) => {
    const req = http.get(target, { headers, localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let body = text;
        try { body = JSON.parse(text); } catch { /* an Engine.IO open packet or plain text */ }
        resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'], body });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('handshake timed out')));
    req.on('error', reject);
  });
}

/** A handshake refused because its address holds its maximum of connections. */
export function assertRefusedForAddress(answer) {
  if (answer.status !== 429 || answer.body?.code !== 'rate_limited' || !Number(answer.retryAfter)) {
    throw new Error(`expected 429 rate_limited with Retry-After, got ${JSON.stringify(answer)}`);
  }
}

// ---------------------------------------------------------------------------------------
// A running server plus the peers connected to it, all torn down together.
// ---------------------------------------------------------------------------------------

export class Env {
  static async start(args = [], opts = {}) {
    const env = new Env();
    env.server = await startServer(args.map(String), opts);
    env.url = env.server.url;
    return env;
  }

  constructor() { this.peers = new Set(); }

  /** Connects a new peer (websocket transport unless `opts.io` says otherwise). */
  async connect({ io: ioOpts = {}, ...peerOpts } = {}) {
    const socket = await openSocket(this.url, ioOpts);
    const peer = new Peer(socket, peerOpts);
    this.peers.add(peer);
    return peer;
  }

  connectMany(n, opts) { return Promise.all(Array.from({ length: n }, () => this.connect(opts))); }

  /** Connects `n` peers and joins them all to `room` one after the other; resolves with the peers. */
  async roomOf(n, room = roomId(), opts) {
    const peers = await this.connectMany(n, opts);
    for (const p of peers) await p.join(room);
    return peers;
  }

  closePeers() {
    for (const p of this.peers) p.close();
    this.peers.clear();
  }

  async stop() {
    this.closePeers();
    if (!this.server) return undefined;
    const server = this.server;
    this.server = undefined;
    return stopServer(server);
  }

  fetch(pathname, init) { return fetch(new URL(pathname, this.url), init); }

  async metrics() {
    const res = await this.fetch('/metrics');
    assert.equal(res.status, 200, 'GET /metrics status');
    return parseMetrics(await res.text());
  }

  /** Polls /metrics until `check(metrics)` is truthy (for gauges that settle after a disconnect). */
  async metricsUntil(check, { ms = 5000, what = 'metrics condition' } = {}) {
    const deadline = Date.now() + ms;
    let m;
    for (;;) {
      m = await this.metrics();
      if (check(m)) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; metrics: ${JSON.stringify(Object.fromEntries(m))}`);
      await sleep(50);
    }
  }
}

/** Stops a server (SIGTERM by default), killing it if it does not exit in `ms`. */
export async function stopServer(server, signal = 'SIGTERM', ms = 8000) {
  let timer;
  const killed = new Promise((resolve) => {
    timer = setTimeout(() => { server.proc.kill('SIGKILL'); resolve(); }, ms);
  });
  const result = await Promise.race([server.stop(signal), killed.then(() => server.exited)]);
  clearTimeout(timer);
  return result;
}

/** Parses Prometheus text format into a Map of `name{labels}` (labels as written, sorted) → number. */
export function parseMetrics(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/);
    if (!m) continue;
    out.set(m[1] + normalizeLabels(m[2] ?? ''), Number(m[3]));
  }
  return out;
}

function normalizeLabels(raw) {
  if (!raw || raw === '{}') return '';
  const pairs = [...raw.slice(1, -1).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => `${m[1]}="${m[2]}"`);
  return pairs.length ? `{${pairs.sort().join(',')}}` : '';
}

/** A metric value by name and labels (missing counters read as 0). */
export function metric(metrics, name, labels = {}) {
  const key = name + normalizeLabels(`{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).join(',')}}`);
  return metrics.get(key) ?? 0;
}

/** True if the metrics map has a sample named `name` (with any labels). */
export function hasMetric(metrics, name) {
  for (const k of metrics.keys()) if (k === name || k.startsWith(`${name}{`)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// Barriers: make "X did not happen" deterministic.
// ---------------------------------------------------------------------------------------

/**
 * `from` sends a marker message to `room` and we wait until every peer in `to` has received
 * it. The server delivers a room's events in the order it accepted them, so afterwards every
 * room event accepted before the marker has reached each of `to` — and what has not arrived
 * never will. Returns the marker bytes.
 */
export async function barrier(room, from, to) {
  const marker = Buffer.concat([Buffer.from('barrier:'), randomBytes(8)]);
  await from.send(room, marker);
  await Promise.all(to.map((p) => p.waitFor('msg', (m) => m.room === room && isBinary(m.data) && toBuf(m.data).equals(marker), { what: 'barrier marker' })));
  return marker;
}

export const isMarker = (m) => isBinary(m?.data) && toBuf(m.data).subarray(0, 8).toString() === 'barrier:';

/** Messages (not barrier markers) a peer received in `room`. */
export const msgsIn = (peer, room) => peer.events('msg', (m) => m.room === room && !isMarker(m));
