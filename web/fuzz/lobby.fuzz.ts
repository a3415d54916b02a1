// web_lobby: the lobby of a v2 room (src/lobby.ts, docs/crypto.md §17.3) with real MLS
// groups (src/mls.ts), against room members who are untrusted: any member present can
// send any bytes as an MLS frame (first byte 0x00: `Lobby.mlsFrame`) or as a lobby body
// (genesis, knock, in: decoded by `decodeLobbyBody` and handed to `Lobby.lobbyBody` as
// room.ts does), at any position, and a frame may be attributed to the wrong member.
//
// The client fuzzed ("Vic") is in a knock room's group at epoch 2 with Alice (leaf 0)
// and Bob; Mallory is present and knocks. A small simulated room made the seeds once:
// real application messages of Alice and Bob at epochs 2 and 3, Alice's commits for
// epoch 2 (one adding Mallory, one removing Vic), the Welcome that let Vic in, real
// knocks (Mallory's, Bob's, Alice's KeyPackages), genesis and `in` bodies. Each input is
// a sequence of such frames and bodies, edited (bit flips, truncation, splices, JSON of
// the wrong type), re-attributed (another member, this client, someone absent), at odd
// positions, or random bytes. Vic's KeyPackage is made once (`keyPackage` is wrapped), so
// that every run joins the same group from the same Welcome: each run starts afresh.
//
// Invariants, for any sequence:
// - No exception escapes a Lobby method or a task it hands to `host.later`: in room.ts
//   both run in the session's event queue, whose catch-all would show "Something went
//   wrong" and lose the rest of the handler (and the host callbacks here never throw).
// - Memory stays bounded: kept frames ≤ MAX_KEPT_FRAMES, pending joins ≤
//   MAX_PENDING_JOINS, at most one knock per member (view.knocks has no member twice and
//   only members present), nothing held once the queue is drained, no timers.
// - A plaintext is handed to the host only for a frame that is byte for byte one that
//   was sealed in the group, with that plaintext, by the member `from` names (their
//   profile key is its MLS sender's key).
// - The lobby is never wedged: afterwards, if it lost the group (its removal by a commit
//   it applied, §17.3 item 6) it knocked again and the Welcome lets it back in; then a
//   well-formed application message of Bob opens. (This target found that a frame with
//   its clear epoch field raised, from anyone present, made the client drop its group:
//   now a later epoch is only refused with a warning, and a missed commit is known only
//   from a gap the server reports; web/test/lobby.test.ts has the forged frame.)
import fc from 'fast-check';
import { it, vi } from 'vitest';
import { type Identity, generateIdentity } from '../src/crypto';
import { type Bytes, fromUtf8, toBase64Url, utf8 } from '../src/encoding';
import { type Frame, type LobbyHost, type LobbyPerson, Lobby, MAX_KEPT_FRAMES, MAX_PENDING_JOINS, decodeLobbyBody, encodeLobbyBody } from '../src/lobby';
import { createGroup } from '../src/mls';
import { TEST_TIMEOUT_MS, bytesFrom, fuzz, type Outcomes, valueFrom } from './harness';

// Vic's KeyPackage, made once: every run's Lobby knocks with it.
const fixed = vi.hoisted(() => ({ identity: null as unknown, made: null as unknown }));
vi.mock('../src/mls', async (importOriginal) => {
  const real = await importOriginal<typeof import('../src/mls')>();
  return {
    ...real,
    keyPackage: async (identity: unknown, room: string) =>
      identity === fixed.identity && fixed.made !== null ? fixed.made : real.keyPackage(identity as Identity, room),
  };
});
const { keyPackage } = await import('../src/mls');

const ROOM = 'AAECAwQFBgcICQoLDA0ODw';
const VIC = 'vic';
/** Who a frame may be attributed to: the members present, this client, someone absent. */
const FROM = ['alice', 'bob', 'mallory', VIC, 'ghost'] as const;

interface Sealed { readonly text: string; readonly key: string }

interface Fixture {
  readonly vic: Identity;
  readonly present: LobbyPerson[];
  readonly welcome: Bytes;
  /** Every application message sealed, by its bytes (base64url): its text and sealer's key. */
  readonly sealed: Map<string, Sealed>;
  /** Bob's message at epoch 2 that no seed holds: the liveness check. */
  readonly final: Bytes;
  readonly mls: Bytes[];
  readonly lobby: Bytes[];
  readonly json: unknown[];
  /** Whole sequences of a real room. */
  readonly sequences: Step[][];
}

type Step =
  | { readonly kind: 'mls'; readonly from: number; readonly data: Uint8Array; readonly pos: number | null; readonly direct: boolean }
  | { readonly kind: 'lobby'; readonly from: number; readonly data: Uint8Array; readonly pos: number | null };

async function makeFixture(): Promise<Fixture> {
  const [alice, bob, mallory, vic] = await Promise.all([generateIdentity(), generateIdentity(), generateIdentity(), generateIdentity()]);
  fixed.identity = vic;
  const person = (member: string, who: Identity, name: string): LobbyPerson =>
    ({ member, key: toBase64Url(who.publicKeyBytes), name, fingerprint: who.fingerprint });
  const sealed = new Map<string, Sealed>();
  const say = async (group: { seal(p: Uint8Array): Promise<Bytes> }, who: Identity, text: string): Promise<Bytes> => {
    const bytes = await group.seal(utf8(text));
    sealed.set(toBase64Url(bytes), { text, key: toBase64Url(who.publicKeyBytes) });
    return bytes;
  };

  // Alice founds; Bob is let in (epoch 1); then Vic (epoch 2).
  const aliceGroup = await createGroup(alice, ROOM);
  const bobKp = await keyPackage(bob, ROOM);
  const addBob = await aliceGroup.add([bobKp.keyPackage]);
  await aliceGroup.process(addBob.commit);
  const bobGroup = await bobKp.pending.join(addBob.welcome);
  const vicKp = await keyPackage(vic, ROOM);
  fixed.made = vicKp;
  const addVic = await aliceGroup.add([vicKp.keyPackage]);
  await aliceGroup.process(addVic.commit);
  await bobGroup.process(addVic.commit);
  const a2 = [await say(aliceGroup, alice, 'alice at epoch 2'), await say(aliceGroup, alice, 'alice again at epoch 2')];
  const b2 = [await say(bobGroup, bob, 'bob at epoch 2'), await say(bobGroup, bob, 'bob again at epoch 2')];
  const final = await say(bobGroup, bob, 'bob, the last word');
  // Two commits of Alice for epoch 2: adding Mallory (applied), and removing Vic (a race it loses).
  const malloryKp = await keyPackage(mallory, ROOM);
  const addMallory = await aliceGroup.add([malloryKp.keyPackage]);
  const removeVic = await aliceGroup.remove([vic.publicKeyBytes]);
  await aliceGroup.process(addMallory.commit);
  await bobGroup.process(addMallory.commit);
  const malloryGroup = await malloryKp.pending.join(addMallory.welcome);
  const a3 = await say(aliceGroup, alice, 'alice at epoch 3');
  const b3 = await say(bobGroup, bob, 'bob at epoch 3');
  const m3 = await say(malloryGroup, mallory, 'mallory at epoch 3');
  const bobKnock = await keyPackage(bob, ROOM);
  const aliceKnock = await keyPackage(alice, ROOM);

  const knock = (kp: Bytes): Bytes => encodeLobbyBody({ type: 'knock', keyPackage: kp, sentAt: 1767225600000 });
  const genesis = encodeLobbyBody({ type: 'genesis', sentAt: 1767225600001 });
  const inBody = encodeLobbyBody({ type: 'in', epoch: 2, sentAt: 1767225600002 });
  const lobby = [knock(malloryKp.keyPackage), knock(bobKnock.keyPackage), knock(aliceKnock.keyPackage), genesis, inBody];
  const mls = [...a2, ...b2, addMallory.commit, removeVic.commit, addVic.welcome, a3, b3, m3, malloryKp.keyPackage];
  const [A, B, M] = [0, 1, 2];
  const m = (from: number, data: Bytes, direct = false): Step => ({ kind: 'mls', from, data, pos: null, direct });
  const l = (from: number, data: Bytes): Step => ({ kind: 'lobby', from, data, pos: null });
  return {
    vic,
    present: [person('alice', alice, 'Alice'), person('bob', bob, 'Bob'), person('mallory', mallory, 'Mallory')],
    welcome: addVic.welcome,
    sealed,
    final,
    mls,
    lobby,
    json: lobby.map((b) => JSON.parse(fromUtf8(b) ?? 'null') as unknown),
    sequences: [
      [m(A, a2[0] as Bytes), m(B, b2[0] as Bytes), m(A, addMallory.commit), m(A, a3), m(B, b3), m(M, m3), l(M, inBody)],
      [l(M, knock(malloryKp.keyPackage)), m(B, a2[1] as Bytes), m(A, b2[1] as Bytes), m(M, a2[0] as Bytes)],
      [m(A, removeVic.commit), m(A, a3), m(A, addVic.welcome, true), m(A, a2[0] as Bytes)],
      [l(A, knock(aliceKnock.keyPackage)), l(B, knock(bobKnock.keyPackage)), l(M, knock(bobKnock.keyPackage)), l(A, genesis)],
      [m(A, a3), m(A, addVic.welcome, true), m(A, addMallory.commit), m(B, b3)],
      [m(A, addMallory.commit), m(A, removeVic.commit), m(B, b2[0] as Bytes), m(B, b2[0] as Bytes)],
    ],
  };
}

let fixture: Fixture;

/** Vic's Lobby on a simulated log: its host answers sends with positions and runs `later` tasks in order. */
class Harness {
  readonly failures: unknown[] = [];
  readonly alerts: string[] = [];
  readonly opened: string[] = [];
  readonly knocksSent: number[] = [];
  readonly lobby: Lobby;
  pos = 10;
  #queue: Promise<void> = Promise.resolve();
  #tasks = 0;
  closed = false;

  constructor(readonly outcomes: Outcomes) {
    const host: LobbyHost = {
      sendLobby: async (body) => {
        const decoded = decodeLobbyBody(body);
        if (typeof decoded === 'object' && decoded !== null && decoded.type === 'knock') this.knocksSent.push(this.pos + 1);
        return ++this.pos;
      },
      sendMls: async () => ++this.pos,
      later: (task) => this.enqueue(task),
      message: (frame, plaintext) => this.#check(() => this.#message(frame, plaintext)),
      changed: () => this.#check(() => this.#changed()),
      alert: (text) => this.#check(() => {
        this.alerts.push(text);
        this.outcomes.hit(`alert:${label(text)}`);
      }),
    };
    this.lobby = new Lobby({ identity: fixture.vic, roomId: ROOM, open: false, now: () => 1767225600000 }, host);
  }

  #check(run: () => void): void {
    if (this.closed) return;
    try {
      run();
    } catch (e: unknown) {
      this.failures.push(e);
    }
  }

  #message(frame: Frame, plaintext: Bytes): void {
    const known = fixture.sealed.get(toBase64Url(frame.data));
    if (known === undefined) throw new Error(`plaintext handed over for a frame nobody sealed: ${toBase64Url(frame.data)}`);
    if (fromUtf8(plaintext) !== known.text) throw new Error(`plaintext ${fromUtf8(plaintext) ?? '?'} for a frame sealed with ${known.text}`);
    const profile = fixture.present.find((p) => p.member === frame.from)?.key;
    if (profile !== known.key) throw new Error(`${known.text} handed over as from ${frame.from}, whose key did not seal it`);
    this.opened.push(known.text);
    this.outcomes.hit('message');
  }

  #changed(): void {
    const view = this.lobby.view;
    const knockers = view.knocks.map((k) => k.member);
    if (new Set(knockers).size !== knockers.length) throw new Error(`a member knocks twice: ${knockers.join(',')}`);
    for (const k of knockers) if (!fixture.present.some((p) => p.member === k)) throw new Error(`a knock from ${k}, not present`);
    if (knockers.length > 0) this.outcomes.hit('knock:shown');
    this.#bounded();
  }

  #bounded(): void {
    const f = this.lobby.footprint;
    if (f.kept > MAX_KEPT_FRAMES || f.pendingJoins > MAX_PENDING_JOINS || f.present > fixture.present.length || f.letIn > 0 || f.timers > 0) {
      throw new Error(`unbounded: ${JSON.stringify(f)}`);
    }
    if (f.kept > 0) this.outcomes.hit('kept');
  }

  enqueue(task: () => Promise<void>): void {
    this.#tasks++;
    this.#queue = this.#queue.then(task).catch((e: unknown) => {
      this.failures.push(e);
    }).finally(() => {
      this.#tasks--;
    });
  }

  /** Runs an event as room.ts does: in the queue, in order. */
  event(run: () => Promise<void>): void {
    this.enqueue(run);
  }

  async drain(): Promise<void> {
    // Sends answer in microtasks, which then hand tasks to `later`: quiet twice in a row.
    for (let quiet = 0; quiet < 2;) {
      while (this.#tasks > 0) await this.#queue;
      await new Promise((resolve) => setTimeout(resolve, 0));
      quiet = this.#tasks === 0 ? quiet + 1 : 0;
    }
    this.#check(() => {
      this.#bounded();
      if (this.lobby.footprint.held !== 0) throw new Error('events held with nothing in flight');
    });
  }
}

/** What an alert says, as an outcome label. */
function label(text: string): string {
  if (text.includes('signed by another member')) return 'wrong-sender';
  if (text.includes('could not be opened')) return 'not-opened';
  if (text.includes('not kept any more')) return 'stale';
  if (text.includes('damaged key package')) return 'knock-damaged';
  if (text.includes('someone else’s key')) return 'knock-other-key';
  if (text.includes('missed a key change')) return 'lost';
  if (text.includes('let you in')) return 'let-in';
  if (text.includes('Keys changed')) return 'removed-someone';
  if (text.includes(' let ')) return 'added';
  if (text.includes('could not be made')) return 'commit-failed';
  return 'other';
}

async function run(steps: readonly Step[], outcomes: Outcomes): Promise<void> {
  const h = new Harness(outcomes);
  try {
    const v = h.lobby;
    h.event(() => v.joined(VIC, fixture.present));
    await h.drain();
    h.event(() => v.mlsFrame({ from: 'alice', data: fixture.welcome, pos: ++h.pos, ts: 0, direct: true }));
    await h.drain();
    if (!v.inGroup) throw new Error('Vic did not join from the Welcome');

    for (const step of steps) {
      const from = FROM[step.from % FROM.length] ?? 'ghost';
      const pos = step.pos ?? ++h.pos;
      if (step.kind === 'mls') {
        outcomes.hit(step.data[0] === 0x00 ? 'mls:frame' : 'mls:not-0x00');
        // A copy: what the lobby keeps or reads is not the seed's.
        const data = new Uint8Array(step.data);
        h.event(() => v.mlsFrame({ from, data, pos, ts: pos, direct: step.direct }));
      } else {
        const body = decodeLobbyBody(step.data);
        if (body === null || body === 'other') {
          outcomes.hit(body === null ? 'lobby:malformed' : 'lobby:other');
        } else {
          outcomes.hit(`lobby:${body.type}`);
          h.event(() => v.lobbyBody(from, body, pos));
        }
      }
    }
    await h.drain();

    // Not wedged: back in the group if it lost it (it knocked again), then Bob's last word opens.
    for (let i = 0; i < 3 && !v.inGroup; i++) {
      outcomes.hit('rejoin');
      if (v.view.status !== 'waiting') throw new Error(`out of the group but ${v.view.status}`);
      if (h.knocksSent.length < 2) throw new Error('lost the group without knocking again');
      h.event(() => v.mlsFrame({ from: 'alice', data: fixture.welcome, pos: ++h.pos, ts: 0, direct: true }));
      await h.drain();
    }
    if (!v.inGroup) throw new Error('wedged: the Welcome for its knock does not let it back in');
    const before = h.opened.length;
    h.event(() => v.mlsFrame({ from: 'bob', data: fixture.final, pos: ++h.pos, ts: 0, direct: false }));
    await h.drain();
    if (h.opened.at(before) !== 'bob, the last word') {
      throw new Error(`wedged: a well-formed message of Bob did not open (alerts: ${h.alerts.slice(-3).join(' | ')})`);
    }
    if (h.failures.length > 0) throw h.failures[0];
  } finally {
    h.closed = true;
    h.lobby.close();
  }
}

it('web_lobby', async () => {
  fixture = await makeFixture();
  const pos = fc.oneof(
    { weight: 6, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom(0, -1, 1, 11, 2 ** 53, -(2 ** 53), NaN, Infinity, -Infinity, 0.5) },
    { weight: 1, arbitrary: fc.integer() },
  );
  const from = fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 2 }) }, { weight: 1, arbitrary: fc.nat({ max: FROM.length - 1 }) });
  const mlsBytes = bytesFrom([...fixture.mls, ...fixture.lobby]);
  const lobbyBytes = fc.oneof(
    { weight: 3, arbitrary: bytesFrom([...fixture.lobby, ...fixture.mls.slice(0, 1)]) },
    { weight: 2, arbitrary: valueFrom(fixture.json, ['type', 'sent_at', 'key_package', 'epoch']).map((v) => utf8(JSON.stringify(v) ?? '')) },
  );
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('mls' as const), from, data: mlsBytes, pos, direct: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('lobby' as const), from, data: lobbyBytes, pos }) },
  );
  type Edit = { at: number; kind: 'insert' | 'replace' | 'delete' | 'dup' | 'reattribute'; step: Step };
  const steps = fc.oneof(
    { weight: 1, arbitrary: fc.array(step, { maxLength: 8 }) },
    {
      weight: 3,
      arbitrary: fc.tuple(
        fc.nat({ max: fixture.sequences.length - 1 }),
        fc.array(fc.record({ at: fc.nat(), kind: fc.constantFrom('insert', 'replace', 'delete', 'dup', 'reattribute'), step }), { maxLength: 5 }) as fc.Arbitrary<Edit[]>,
      ).map(([i, edits]) => {
        const list = [...(fixture.sequences[i] ?? [])];
        for (const e of edits) {
          const at = list.length === 0 ? 0 : e.at % list.length;
          const here = list[at];
          if (e.kind === 'insert') list.splice(at, 0, e.step);
          else if (e.kind === 'replace' && list.length > 0) list[at] = e.step;
          else if (e.kind === 'delete') list.splice(at, 1);
          else if (e.kind === 'dup' && here !== undefined) list.splice(at, 0, here);
          else if (e.kind === 'reattribute' && here !== undefined) list[at] = { ...here, from: e.step.from, pos: e.step.pos };
        }
        return list;
      }),
    },
  );
  await fuzz({
    name: 'web_lobby',
    input: steps,
    run,
    mustReach: [
      'message', 'mls:frame', 'lobby:knock', 'lobby:genesis', 'lobby:in', 'lobby:malformed', 'lobby:other', 'knock:shown', 'kept', 'rejoin',
      'alert:wrong-sender', 'alert:not-opened', 'alert:knock-damaged', 'alert:knock-other-key', 'alert:lost', 'alert:let-in', 'alert:added',
    ],
  });
}, TEST_TIMEOUT_MS);
