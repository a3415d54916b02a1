// web_room: the web client's whole handling of what the server sends, the server being
// untrusted: a RoomSession (src/room.ts) over its Connection (src/connection.ts), with
// socket.io-client replaced by a fake socket that plays a fuzzed server: join and resume
// acks, presence, msg (sealed payloads), chunk and notice events with any payloads, in
// any order, with drops and reconnections. Everything the session tells its UI is checked.
//
// Invariants: no event ever reaches the session's catch-all ("Something went wrong
// handling an event": a handler threw something other than a refusal); the session
// always gets through its queue (no hang); members shown have a verified profile, a
// clean name and a well-formed fingerprint, exactly one of them is this person, none
// twice; every text shown, typing line and file announced comes from a member shown.
import fc from 'fast-check';
import { afterEach, expect, it, vi } from 'vitest';
import { type FileEvent, type MemberView, RoomSession, type RoomListener, type ChatItem } from '../src/room';
import { deriveRoomKeys, identityFromSeed, seal } from '../src/crypto';
import { encodeBody } from '../src/content';
import { toBase64Url } from '../src/encoding';
import { b64, loadVectors } from '../test/vectors';
import { TEST_TIMEOUT_MS, cloneValue, fuzz, oddValue, valueFrom, type Outcomes } from './harness';

const fake = vi.hoisted(() => {
  type Handler = (...args: unknown[]) => void;
  /** A socket.io-client Socket as Connection uses it, played by the fuzz input. */
  class FakeSocket {
    readonly handlers = new Map<string, Handler[]>();
    readonly io = { on: (): void => {} };
    connected = false;
    active = true;
    id: string | undefined = undefined;
    /** Answers to requests, in order; once used up, `fallback` answers. */
    answers: unknown[] = [];
    fallback: (event: string) => unknown = () => undefined;
    readonly sent: { event: string; payload: unknown }[] = [];

    on(event: string, handler: Handler): this {
      this.handlers.set(event, [...(this.handlers.get(event) ?? []), handler]);
      return this;
    }
    server(event: string, ...args: unknown[]): void {
      for (const handler of this.handlers.get(event) ?? []) handler(...args);
    }
    connect(): this {
      this.connected = true;
      this.id = 'selfSocketId00000001';
      this.server('connect');
      return this;
    }
    disconnect(): this {
      this.connected = false;
      return this;
    }
    timeout(): this {
      return this;
    }
    get volatile(): this {
      return this;
    }
    emit(event: string, payload: unknown): this {
      this.sent.push({ event, payload });
      return this;
    }
    async emitWithAck(event: string, payload: unknown): Promise<unknown> {
      this.sent.push({ event, payload });
      await Promise.resolve();
      return this.answers.length > 0 ? this.answers.shift() : this.fallback(event);
    }
  }
  return { FakeSocket, current: null as FakeSocket | null };
});

vi.mock('socket.io-client', () => ({
  io: () => {
    fake.current = new fake.FakeSocket();
    return fake.current;
  },
}));

const vectors = loadVectors();
if (vectors === null) throw new Error('web_room needs testdata/crypto-vectors.json');

const SECRET = b64(vectors.rooms[0]?.secret ?? '');
const ROOM = vectors.rooms[0]?.room_id ?? '';
const ME = 'selfSocketId00000001';
const ADA = 'Xa9_kLm2-QrS4tUv6wYz';
const BOB = 'b0Bs0cketId_-123456A';
const ADA_SEED = 'M97vzWeVHVp9kfsvdV60CHVbqKfJchuEL-hJY4lq7wg';
const BOB_SEED = 'P26cQWWzyFH74rVcIufPiJsvmU5PWFmm5o767UL-mL0';
const BARRIER = 'zz-barrier-not-a-member';
const LIMITS = { max_message_bytes: 65536, max_chunk_bytes: 1048576, max_file_chunks: 256, max_file_bytes: 268435456, max_members_per_room: 1000 };
const INTERNAL_ERROR = 'Something went wrong handling an event';
const NOT_MEMBER = 'A message from someone who is not in the room was dropped.';

type Step = readonly [string, unknown] | { readonly drop: string } | { readonly reconnect: true };

interface Seeds {
  joinAcks: unknown[];
  resumeAcks: unknown[];
  events: (readonly [string, unknown])[];
  sequences: Step[][];
}

async function makeSeeds(): Promise<Seeds> {
  const room = await deriveRoomKeys(SECRET);
  const ada = await identityFromSeed(b64(ADA_SEED));
  const bob = await identityFromSeed(b64(BOB_SEED));
  const profile = async (member: string, who: typeof ada, name: string): Promise<string> =>
    toBase64Url(await seal(room, who, member, encodeBody({ type: 'profile', name, key: toBase64Url(who.publicKeyBytes), sentAt: 1767225600000 })));
  const adaProfile = await profile(ADA, ada, 'Ada Lovelace');
  const bobProfile = await profile(BOB, bob, 'Zoë 🦀\u202e');
  const sealed = (name: string): Uint8Array => b64(vectors?.sealed.find((v) => v.name === name)?.sealed ?? '');
  const file = vectors?.files[0];
  const fileBody = vectors?.sealed.find((v) => v.name === 'file')?.body ?? '';
  const offer = await seal(room, ada, ADA, new TextEncoder().encode(fileBody) as Uint8Array<ArrayBuffer>);
  const fileId = (JSON.parse(fileBody) as { id: string }).id;
  const at = 1767225600000;
  const presence = (kind: string, member: string, pos: number, extra: object = {}): readonly [string, unknown] =>
    ['presence', { kind, room: ROOM, member, at: at + pos, pos, ...extra }];
  const msg = (from: string, data: Uint8Array, pos: number, extra: object = {}): readonly [string, unknown] =>
    ['msg', { room: ROOM, from, ts: at + pos, data: data.slice().buffer, pos, ...extra }];
  const chunk = (seq: number, data: Uint8Array, pos: number): readonly [string, unknown] =>
    ['chunk', { room: ROOM, from: ADA, file: fileId, seq, data: data.slice().buffer, pos }];
  const text = sealed('text with non-ASCII and emoji');
  const tampered = text.slice();
  tampered[40] = (tampered[40] ?? 0) ^ 1;
  const chunks = (file?.chunks ?? []).map(b64);

  const adaJoins = presence('join', ADA, 2, { profile: adaProfile });
  const bobJoins = presence('join', BOB, 3, { profile: bobProfile });
  const events = [
    adaJoins, bobJoins, msg(ADA, text, 4), msg(BOB, sealed('typing'), 5), msg(ADA, text, 6, { to: ME }), msg(ADA, offer, 7),
    ...chunks.map((c, i) => chunk(i, c, 8 + i)), presence('away', BOB, 20), presence('back', BOB, 21),
    presence('leave', ADA, 22, { reason: 'timeout' }), ['notice', { code: 'rate_limited', message: 'slow down' }] as const,
    ['notice', { code: 'shutting_down', message: 'bye' }] as const, msg(ADA, tampered, 23), msg(BOB, text, 24),
    presence('join', BOB, 25, { profile: adaProfile }),
  ];
  const joinAck = {
    ok: true, member: ME, at, limits: LIMITS, epoch: '9f8e7d6c5b4a3921', pos: 1, token: 'dG9rZW4', grace_ms: 20000, window_ms: 60000,
    members: [{ member: ADA, at: at - 10, profile: adaProfile }],
  };
  const resumeAck = { ok: true, member: ME, at, token: 'bmV3LXRva2Vu', epoch: '9f8e7d6c5b4a3921', pos: 30, replayed: 1, limits: LIMITS };
  return {
    joinAcks: [
      joinAck, { ...joinAck, members: [] }, { ...joinAck, missed: { messages: 3, exact: false } },
      { ok: false, error: { code: 'room_full', message: 'room is full' } }, { ok: false, error: { code: 'unavailable', message: 'x', retry_ms: 10 } },
    ],
    resumeAcks: [resumeAck, { ...resumeAck, missed: { messages: 2, exact: true } }, { ok: false, error: { code: 'resume_failed', message: 'no' } }],
    events,
    sequences: [
      [bobJoins, msg(BOB, sealed('typing'), 5), msg(ADA, text, 6)],
      [adaJoins, bobJoins, msg(ADA, text, 4, { to: ME }), presence('away', ADA, 5), presence('back', ADA, 6)],
      [msg(ADA, offer, 7), ...chunks.map((c, i) => chunk(i, c, 8 + i)), ['notice', { code: 'x', message: 'y' }] as const],
      [bobJoins, { drop: 'transport close' }, { reconnect: true }, msg(BOB, sealed('typing'), 31), presence('leave', BOB, 32, { reason: 'left' })],
      [msg(ADA, text, 4), msg(ADA, text, 4), msg(ADA, tampered, 5), msg(BOB, text, 6), presence('leave', ADA, 7, { reason: 'disconnected' })],
      [{ drop: 'io server disconnect' }, { reconnect: true }, { drop: 'ping timeout' }, { reconnect: true }, msg(ADA, text, 40)],
    ],
  };
}

// ---- Checking what the UI hears ----

const REMOVED = /[\u0000-\u001f\u007f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

class Ui implements RoomListener {
  closed = false;
  /** Members ever shown, by name and fingerprint. */
  readonly shown = new Set<string>();
  barrierAlerts = 0;
  state = 'connecting';
  get online(): boolean {
    return this.state === 'online';
  }
  /** Not waiting for an answer to a join or resume. */
  get settled(): boolean {
    return this.state !== 'connecting' && this.state !== 'joining';
  }
  constructor(readonly outcomes: Outcomes) {}

  /** What broke an invariant. Kept, not thrown: a listener that throws would break the
   * session's own queue, and the failure would surface as an unhandled rejection. */
  readonly failures: unknown[] = [];

  #check(run: () => void): void {
    if (this.closed) return;
    try {
      run();
    } catch (e: unknown) {
      this.failures.push(e);
    }
  }
  connection(state: { kind: string }): void {
    this.#check(() => {
      this.state = state.kind;
      this.outcomes.hit(`state:${state.kind}`);
    });
  }
  members(members: readonly MemberView[]): void {
    this.#check(() => {
      expect(members.filter((m) => m.self)).toHaveLength(1);
      expect(new Set(members.map((m) => m.member)).size).toBe(members.length);
      for (const m of members) {
        expect(REMOVED.test(m.name) || m.name.length === 0 || m.name.length > 64, JSON.stringify(m.name)).toBe(false);
        expect(/^[0-9a-f]{4}( [0-9a-f]{4}){4}$/.test(m.fingerprint)).toBe(true);
        this.shown.add(`${m.name}|${m.fingerprint}`);
      }
      this.outcomes.hit(`members:${Math.min(members.length, 3)}`);
    });
  }
  #item(item: ChatItem): void {
    if (item.kind === 'alert') {
      expect(item.text.startsWith(INTERNAL_ERROR), item.text).toBe(false);
      if (item.text === NOT_MEMBER) this.barrierAlerts++;
      this.outcomes.hit(`alert:${item.tone}`);
    } else if (!item.author.self) {
      expect(this.shown.has(`${item.author.name}|${item.author.fingerprint}`), 'a text from a member shown').toBe(true);
      this.outcomes.hit(item.direct ? 'text:direct' : 'text');
    }
  }
  added(item: ChatItem): void {
    this.#check(() => this.#item(item));
  }
  updated(item: ChatItem): void {
    this.#check(() => this.#item(item));
  }
  typing(text: string): void {
    this.#check(() => {
      if (text !== '') this.outcomes.hit('typing');
    });
  }
  file(event: FileEvent): void {
    this.#check(() => {
      if (event.kind === 'announced') {
        expect(this.shown.has(`${event.author.name}|${event.author.fingerprint}`)).toBe(true);
        expect(/[/\\]/.test(event.body.name)).toBe(false);
      }
      this.outcomes.hit(`file:${event.kind}`);
    });
  }
}

async function settle(ui: Ui, until: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!until()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return !ui.closed;
}

interface Input { readonly joinAcks: unknown[]; readonly resumeAcks: unknown[]; readonly steps: Step[] }

let seeds: Seeds;
const sessions: RoomSession[] = [];

afterEach(() => {
  for (const s of sessions.splice(0)) s.leaveNow();
});

async function run(input: Input, outcomes: Outcomes): Promise<void> {
  const ui = new Ui(outcomes);
  const valid = { join: seeds.joinAcks[0], resume: seeds.resumeAcks[0] };
  let session: RoomSession | undefined;
  try {
    session = await RoomSession.open({ secret: SECRET, name: 'Me', now: () => 1767225600000 }, ui);
    sessions.push(session);
    const socket = fake.current;
    if (socket === null) throw new Error('no socket');
    const acks = { join: [...input.joinAcks], resume: [...input.resumeAcks] };
    socket.fallback = (event) => {
      const list = event === 'resume' ? acks.resume : event === 'join' ? acks.join : null;
      if (list === null) return { ok: true, ts: 1767225600000, pos: 0 };
      return list.length > 0 ? list.shift() : event === 'resume' ? valid.resume : valid.join;
    };
    await settle(ui, () => ui.settled, 2000);
    for (const step of input.steps) {
      if (Array.isArray(step)) {
        // socket.io-client hands over only events named by a string.
        const [name, payload] = step as unknown[];
        socket.server(typeof name === 'string' ? name : 'msg', cloneValue(payload));
      } else if (typeof step === 'object' && step !== null && 'drop' in step && typeof step.drop === 'string') {
        socket.connected = false;
        socket.server('disconnect', step.drop);
      } else if (typeof step === 'object' && step !== null && 'reconnect' in step) {
        socket.connected = true;
        socket.server('connect');
        await settle(ui, () => ui.settled, 2000);
      } else {
        // Whatever an edit made of a step: a payload of some event.
        socket.server('msg', cloneValue(step));
      }
    }
    // Back online with an answer that works, then a message from nobody: its warning comes
    // out of the session's queue after everything before it.
    if (!ui.online) {
      acks.join = [];
      acks.resume = [];
      socket.connected = true;
      socket.server('connect');
      await settle(ui, () => ui.settled, 2000);
      expect(ui.online, 'back online with a valid answer').toBe(true);
    }
    const before = ui.barrierAlerts;
    socket.server('msg', { room: ROOM, from: BARRIER, ts: 1, data: new Uint8Array([1]).buffer, pos: 0 });
    expect(await settle(ui, () => ui.barrierAlerts > before, 5000), 'the session got through its queue').toBe(true);
    if (ui.failures.length > 0) throw ui.failures[0];
  } finally {
    ui.closed = true;
    session?.leaveNow();
  }
}

it('web_room', async () => {
  seeds = await makeSeeds();
  const step = fc.oneof(
    { weight: 12, arbitrary: valueFrom(seeds.events, ['kind', 'room', 'member', 'profile', 'from', 'data', 'to', 'pos', 'seq', 'file', 'reason', 'code']) },
    { weight: 1, arbitrary: fc.constantFrom('transport close', 'io server disconnect', 'ping timeout').map((drop) => ({ drop })) },
    { weight: 1, arbitrary: fc.constant({ reconnect: true as const }) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom('presence', 'msg', 'chunk', 'notice'), oddValue) },
  ) as fc.Arbitrary<Step>;
  type Edit = { at: number; kind: 'insert' | 'replace' | 'delete' | 'dup'; step: Step };
  const steps = fc.tuple(
    fc.nat({ max: seeds.sequences.length - 1 }),
    fc.array(fc.record({ at: fc.nat(), kind: fc.constantFrom('insert', 'replace', 'delete', 'dup'), step }), { maxLength: 5 }) as fc.Arbitrary<Edit[]>,
  ).map(([i, edits]) => {
    const list = [...(seeds.sequences[i] ?? [])];
    for (const e of edits) {
      const at = list.length === 0 ? 0 : e.at % list.length;
      if (e.kind === 'insert') list.splice(at, 0, e.step);
      else if (e.kind === 'replace' && list.length > 0) list[at] = e.step;
      else if (e.kind === 'delete') list.splice(at, 1);
      else if (list[at] !== undefined) list.splice(at, 0, list[at] as Step);
    }
    return list;
  });
  const acks = (list: unknown[]): fc.Arbitrary<unknown[]> =>
    fc.oneof({ weight: 3, arbitrary: fc.constant([] as unknown[]) }, { weight: 2, arbitrary: fc.array(valueFrom(list, ['ok', 'member', 'members', 'profile', 'epoch', 'token', 'pos', 'limits', 'missed', 'error']), { maxLength: 3 }) });
  await fuzz({
    name: 'web_room',
    input: fc.record({ joinAcks: acks(seeds.joinAcks), resumeAcks: acks(seeds.resumeAcks), steps }),
    run,
    mustReach: ['members:3', 'text', 'text:direct', 'typing', 'file:announced', 'file:chunk', 'alert:warning', 'state:online', 'state:offline'],
  });
}, TEST_TIMEOUT_MS);
