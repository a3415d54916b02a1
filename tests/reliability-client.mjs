// The reliability tests' client (tests/node/reliability.test.mjs, tests/cluster/
// reliability.test.mjs): an official socket.io-client with client message ids and an
// outbox (resend with the same id until acked, in order, one outstanding), that records
// what it receives and checks, at the end, that every acknowledged message reached every
// member once, in order. docs/reliability.md.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { io } from 'socket.io-client';
import { isBinary, profile, roomId, sleep, toBuf } from './node/helpers.mjs';

const ACK_MS = 3000;

/** A message's bytes: sender index and seq (big endian u32 each), then random filler. */
export function encode(sender, seq, size = 64) {
  const b = randomBytes(size);
  b.writeUInt32BE(sender, 0);
  b.writeUInt32BE(seq, 4);
  return b;
}
export function decode(data) {
  const b = toBuf(data);
  return { sender: b.readUInt32BE(0), seq: b.readUInt32BE(4) };
}

/** A promise-based wake-up: `wait()` resolves at the next `notify()` (or after `ms`). */
export class Signal {
  constructor() { this.waiters = []; }
  notify() { const w = this.waiters; this.waiters = []; for (const r of w) r(); }
  wait(ms = 1000) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(timer); resolve(); });
    });
  }
}

/**
 * One chat client: a socket.io-client socket that reconnects by itself, an event log,
 * and an outbox of messages sent one at a time until acknowledged.
 */
export class Client {
  /**
   * `resumeByToken`: a reconnect that Socket.IO did not recover (it landed on another
   * node) resumes with `resume` and the member's token before anything is sent.
   */
  constructor(index, room, url, stats, { resumeByToken = false } = {}) {
    this.index = index;
    this.resumeByToken = resumeByToken;
    this.lastPos = 0;
    this.ready = true;
    this.room = room;
    this.stats = stats;
    this.received = []; // {sender, seq, pos, from, offset}
    this.presence = []; // {kind, member, pos, reason, recvAt}
    this.notices = []; // {code, message, recvAt}
    this.offsetMismatches = 0;
    this.outbox = []; // seqs waiting for an ok ack, oldest first
    this.acked = []; // {seq, pos, ts, duplicate}
    this.nextSeq = 0;
    this.sends = new Map(); // seq → times sent
    this.wake = new Signal();
    this.reconnects = []; // {recovered, ms}
    this.blipAt = undefined;
    this.disconnectedAt = undefined;
    this.connects = 0;
    this.failures = []; // unexpected acks / events: the test fails on any
    this.socket = io(url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 500,
      timeout: 5000,
    });
    this.socket.onAny((event, payload, ...rest) => this.record(event, payload, rest));
    this.socket.on('connect', () => {
      this.connects += 1;
      if (this.connects > 1) {
        const since = this.blipAt ?? this.disconnectedAt;
        const reconnect = { recovered: this.socket.recovered === true, ms: Date.now() - since, at: Date.now() };
        this.reconnects.push(reconnect);
        this.blipAt = undefined;
        if (!reconnect.recovered && this.resumeByToken && this.joinAck) {
          this.ready = false;
          this.resume(since, reconnect);
          return;
        }
      }
      this.wake.notify();
    });
    this.socket.on('disconnect', () => { this.disconnectedAt = Date.now(); });
  }

  /** Resumes the member by token (after a reconnect Socket.IO could not recover). */
  async resume(since, reconnect) {
    let ack;
    reconnect.from = this.lastPos;
    try {
      ack = await this.socket.timeout(5000).emitWithAck('resume', {
        room: this.room, member: this.member, token: this.token, epoch: this.joinAck.epoch, pos: this.lastPos,
      });
    } catch {
      return; // disconnected again: the next connect resumes
    }
    if (ack?.ok === true) {
      this.token = ack.token;
      reconnect.resumed = true;
      reconnect.ackPos = ack.pos;
      reconnect.replayed = ack.replayed;
      reconnect.ms = Date.now() - since;
      this.ready = true;
      this.wake.notify();
    } else {
      this.failures.push(`client ${this.index}: resume acked ${JSON.stringify(ack)}`);
    }
  }

  record(event, payload, rest) {
    const now = Date.now();
    if ((event === 'msg' || event === 'presence') && payload?.room === this.room && payload.pos > this.lastPos) {
      this.lastPos = payload.pos;
    }
    if (event === 'msg' && payload?.room === this.room) {
      const offset = rest[rest.length - 1];
      if (offset !== String(payload.pos)) this.offsetMismatches += 1;
      if (!isBinary(payload.data)) { this.failures.push(`msg without binary data: ${JSON.stringify(payload).slice(0, 120)}`); return; }
      this.received.push({ ...decode(payload.data), pos: payload.pos, from: payload.from, recvAt: now });
    } else if (event === 'presence' && payload?.room === this.room) {
      this.presence.push({ kind: payload.kind, member: payload.member, pos: payload.pos, reason: payload.reason, recvAt: now });
    } else if (event === 'notice') {
      this.notices.push({ ...payload, recvAt: now });
    }
  }

  connected() {
    if (this.socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client ${this.index}: no connection in 8 s`)), 8000);
      this.socket.once('connect', () => { clearTimeout(timer); resolve(); });
    });
  }

  async join() {
    await this.connected();
    const ack = await this.socket.timeout(5000).emitWithAck('join', { room: this.room, profile: profile() });
    assert.equal(ack?.ok, true, `client ${this.index}: join ${JSON.stringify(ack)}`);
    this.joinAck = ack;
    this.member = ack.member;
    this.token = ack.token;
    if (ack.pos > this.lastPos) this.lastPos = ack.pos;
    return ack;
  }

  /** Adds the next message to the outbox (a steady-rate generator calls this). */
  enqueue() {
    this.outbox.push(this.nextSeq++);
    this.wake.notify();
  }

  /**
   * Sends the outbox, oldest first, one outstanding: the head goes again (same id) after
   * a timeout or a disconnect, so a sender's messages keep their order. Stops when
   * `isDone()` and the outbox is empty, or on an `unavailable` ack when `stopOnUnavailable`.
   */
  async runSender(isDone, { stopOnUnavailable = false } = {}) {
    for (;;) {
      if (this.halted) return;
      if (this.outbox.length === 0) {
        if (isDone()) return;
        await this.wake.wait(200);
        continue;
      }
      if (!this.socket.connected || !this.ready) { await this.wake.wait(200); continue; }
      const seq = this.outbox[0];
      const times = (this.sends.get(seq) ?? 0) + 1;
      this.sends.set(seq, times);
      if (times > 1) this.stats.resends += 1;
      let ack;
      try {
        const pending = this.socket.timeout(ACK_MS).emitWithAck('msg', {
          room: this.room, id: `c${this.index}-${seq}`, data: encode(this.index, seq),
        });
        if (this.blipOnSend) {
          // A blip with this message on the wire: whether the server relayed it before
          // the transport closed is a race; its ack is lost either way.
          this.blipOnSend = false;
          this.blipAt = Date.now();
          this.socket.io.engine.close();
        }
        ack = await pending;
      } catch (err) {
        // "socket has been disconnected" / "operation has timed out": transient.
        this.stats.transient[err.message] = (this.stats.transient[err.message] ?? 0) + 1;
        continue;
      }
      if (ack?.ok === true) {
        if (ack.pos > this.lastPos) this.lastPos = ack.pos;
        this.acked.push({ seq, pos: ack.pos, ts: ack.ts, duplicate: ack.duplicate === true, at: Date.now() });
        if (ack.duplicate === true) this.stats.duplicateAcks += 1;
        this.outbox.shift();
      } else if (ack?.error?.code === 'rate_limited') {
        this.stats.rateLimited += 1;
        await sleep(50);
      } else if (ack?.error?.code === 'unavailable' && stopOnUnavailable) {
        this.stats.unavailable += 1;
        return;
      } else if (this.resumeByToken && (ack?.error?.code === 'unavailable' || (ack?.error?.code === 'not_member' && !this.ready))) {
        // A node shutting down, or a resume under way: transient.
        this.stats.transient[ack.error.code] = (this.stats.transient[ack.error.code] ?? 0) + 1;
        await sleep(50);
      } else {
        this.failures.push(`client ${this.index}: msg c${this.index}-${seq} acked ${JSON.stringify(ack)}`);
        return;
      }
    }
  }

  close() { this.socket.close(); }
}

/** Waits until `check()` is true (polled), or throws `what` after `ms`. */
export async function until(check, ms, what) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** `promise`, or a rejection naming `what` after `ms` (the timer does not outlive it). */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); });
  try { return await Promise.race([promise, timeout]); } finally { clearTimeout(timer); }
}

export const newStats = () => ({ resends: 0, duplicateAcks: 0, rateLimited: 0, unavailable: 0, transient: {} });

/** Starts `rooms × perRoom` clients, each joined to its room, one room after the other. */
export async function startClients(url, rooms, perRoom, stats, opts) {
  const clients = [];
  for (let r = 0; r < rooms; r++) {
    const room = roomId();
    for (let i = 0; i < perRoom; i++) clients.push(new Client(clients.length, room, url, stats, opts));
  }
  for (const c of clients) await c.join();
  // Every member has heard the join of each member who joined after it: the load starts
  // on a settled roster.
  await until(() => clients.every((c) => othersIn(clients, c).every((o) => o.joinAck.pos < c.joinAck.pos
    || c.presence.some((p) => p.kind === 'join' && p.member === o.member))), 15_000, 'every join heard');
  return clients;
}

/** Steady-rate generators: each client enqueues one message every `intervalMs` (random phase). */
export function generate(clients, intervalMs) {
  const timers = [];
  for (const c of clients) {
    timers.push(setTimeout(() => { c.enqueue(); timers.push(setInterval(() => c.enqueue(), intervalMs)); }, Math.random() * intervalMs));
  }
  return () => { for (const t of timers) clearInterval(t); };
}

/** Every other member of `c`'s room that sent something. */
export const othersIn = (clients, c) => clients.filter((o) => o.room === c.room && o !== c);

/**
 * For every member: each message acknowledged to another member of its room received
 * exactly once (by (sender, seq) and by pos), at the position its sender was told, in the
 * sender's order; received positions strictly increase. Returns the deliveries checked.
 */
export function checkDeliveries(clients, { members = clients } = {}) {
  let checked = 0;
  let duplicates = 0;
  for (const c of members) {
    const positions = c.received.map((m) => m.pos);
    for (let i = 1; i < positions.length; i++) {
      assert.ok(positions[i] > positions[i - 1],
        `client ${c.index}: received positions not strictly increasing at ${i}: ${positions[i - 1]} then ${positions[i]}`);
    }
    duplicates += positions.length - new Set(positions).size;
    for (const o of othersIn(clients, c)) {
      const got = c.received.filter((m) => m.sender === o.index);
      assert.ok(got.every((m) => m.from === o.member), `client ${c.index}: a message of client ${o.index} came from another member id`);
      const seqs = got.map((m) => m.seq);
      const unique = new Set(seqs);
      duplicates += seqs.length - unique.size;
      assert.equal(seqs.length, unique.size, `client ${c.index}: ${seqs.length - unique.size} duplicate(s) of client ${o.index}'s messages`);
      for (let i = 1; i < seqs.length; i++) {
        assert.ok(seqs[i] > seqs[i - 1], `client ${c.index}: client ${o.index}'s messages out of order: seq ${seqs[i - 1]} then ${seqs[i]}`);
      }
      const byseq = new Map(got.map((m) => [m.seq, m]));
      const missing = [];
      for (const a of o.acked) {
        const m = byseq.get(a.seq);
        if (!m) { missing.push(a.seq); continue; }
        assert.equal(m.pos, a.pos, `client ${c.index}: client ${o.index}'s seq ${a.seq} received at pos ${m.pos}, acked at pos ${a.pos}`);
        checked += 1;
      }
      assert.deepEqual(missing.slice(0, 10), [],
        `client ${c.index}: ${missing.length} of the ${o.acked.length} messages acknowledged to client ${o.index} never arrived (seqs ${missing.slice(0, 10).join(',')}…; positions ${missing.slice(0, 10).map((q) => o.acked.find((a) => a.seq === q)?.pos).join(',')}; the receiver's reconnects ${JSON.stringify(c.reconnects)}; its positions around: ${JSON.stringify(c.received.map((m) => m.pos).filter((p) => Math.abs(p - (o.acked.find((a) => a.seq === missing[0])?.pos ?? 0)) < 6))})`);
    }
  }
  return { checked, duplicates };
}
