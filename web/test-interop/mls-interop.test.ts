// The two MLS engines in one group (issue #19, docs/crypto.md §16): the browser's
// (src/mls.ts, ts-mls) in this process, the Rust one (crates/mls, openmls) in a child
// process, crates/mls/examples/mls_peer.rs, driven over JSON lines. Every commit goes
// through a "log" that this test orders, and every member, its author included, applies
// the log in that order, as StreamChat's room log makes them. After every step all
// members agree on the epoch, its authenticator and the members.
//
// STREAMCHAT_MLS_PEER names the peer binary; without it this file fails (scripts/test
// builds it: `cargo build --release -p streamchat-mls --example mls_peer`).
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Identity, generateIdentity } from '../src/crypto';
import { type Bytes, fromBase64Url, fromUtf8, toBase64Url, toHex, utf8 } from '../src/encoding';
import { MlsError, type PendingJoin, type RoomGroup, createGroup, groupIdOf, keyPackage } from '../src/mls';
import { consumeRatchet } from 'ts-mls/secretTree.js';
import {
  type ClientState, type Proposal, createCommit, createProposal, createGroup as mlsCreateGroup, decodeMlsMessage, defaultCapabilities, defaultLifetime,
  encodeMlsMessage, generateKeyPackageWithKey, getCiphersuiteFromName, getCiphersuiteImpl,
} from 'ts-mls';

const PEER = process.env.STREAMCHAT_MLS_PEER;
if (PEER === undefined || PEER === '' || !existsSync(PEER)) {
  throw new Error(`STREAMCHAT_MLS_PEER must name the Rust peer binary (cargo build --release -p streamchat-mls --example mls_peer); got ${PEER ?? 'nothing'}`);
}
const PEER_PATH: string = PEER;

const ROOM = 'AAECAwQFBgcICQoLDA0ODw';

// ---- The Rust peer ---------------------------------------------------------------------

class PeerError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

type Json = Record<string, unknown>;

class RustPeer {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  #next = 1;
  #stderr = '';

  constructor(path: string) {
    this.#child = spawn(path, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr.on('data', (chunk: Buffer) => { this.#stderr += chunk.toString(); });
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const reply = JSON.parse(line) as { id: number; ok?: Json; error?: string; code?: string };
      const waiter = this.#waiting.get(reply.id);
      if (waiter === undefined) return;
      this.#waiting.delete(reply.id);
      if (reply.ok !== undefined) waiter.resolve(reply.ok);
      else waiter.reject(new PeerError(reply.code ?? 'unknown', reply.error ?? 'no error text'));
    });
    this.#child.on('exit', (code) => {
      for (const waiter of this.#waiting.values()) waiter.reject(new Error(`mls_peer exited (${String(code)}): ${this.#stderr}`));
      this.#waiting.clear();
    });
  }

  request(op: string, name: string, fields: Json = {}): Promise<Json> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#child.stdin.write(`${JSON.stringify({ id, op, name, ...fields })}\n`);
    });
  }

  close(): void {
    this.#child.stdin.end();
  }
}

let peer: RustPeer;
beforeAll(() => { peer = new RustPeer(PEER_PATH); });
afterAll(() => { peer.close(); });

const b64 = (bytes: Uint8Array): string => toBase64Url(bytes);
function unb64(text: unknown): Bytes {
  const bytes = typeof text === 'string' ? fromBase64Url(text) : null;
  if (bytes === null) throw new Error(`not base64url: ${String(text)}`);
  return bytes;
}

// ---- Members of either engine, seen the same way ---------------------------------------

/** What a member made of one log entry, the same for both engines. */
type Outcome =
  | { kind: 'message'; sender: string; text: string }
  | { kind: 'own-message' }
  | { kind: 'epoch'; epoch: bigint; own: boolean; discardedOwn: boolean; added: string[]; removed: string[] }
  | { kind: 'removed'; epoch: bigint }
  | { kind: 'lost-race' }
  | { kind: 'error'; code: string; message: string };

interface Member {
  readonly name: string;
  readonly engine: 'rust' | 'browser';
  /** The raw Ed25519 public key, hex. */
  readonly key: string;
  process(bytes: Uint8Array): Promise<Outcome>;
  seal(text: string): Promise<Bytes>;
  add(keyPackages: Uint8Array[]): Promise<{ commit: Bytes; welcome: Bytes }>;
  remove(keys: string[]): Promise<{ commit: Bytes }>;
  state(): Promise<{ epoch: bigint; authenticator: string; members: string[] }>;
}

/** A newcomer of either engine: its KeyPackage, then its Welcome. */
interface Newcomer {
  readonly keyPackage: Bytes;
  readonly key: string;
  join(welcome: Uint8Array): Promise<Member>;
}

const sorted = (keys: string[]): string[] => [...keys].sort();
const hexOf = (keys: unknown): string[] => sorted((keys as string[]).map((k) => toHex(unb64(k))));

function rustMember(name: string, key: string): Member {
  return {
    name,
    engine: 'rust',
    key,
    async process(bytes) {
      let ok: Json;
      try {
        ok = await peer.request('process', name, { bytes: b64(bytes) });
      } catch (error) {
        if (error instanceof PeerError) return { kind: 'error', code: error.code.replaceAll('_', '-'), message: error.message };
        throw error;
      }
      switch (ok.kind) {
        case 'message':
          return { kind: 'message', sender: toHex(unb64(ok.sender)), text: fromUtf8(unb64(ok.plaintext)) ?? '' };
        case 'own_message':
          return { kind: 'own-message' };
        case 'epoch':
          return {
            kind: 'epoch', epoch: BigInt(ok.epoch as number), own: ok.own === true, discardedOwn: ok.discarded_own === true,
            added: hexOf(ok.added), removed: hexOf(ok.removed),
          };
        case 'removed':
          return { kind: 'removed', epoch: BigInt(ok.epoch as number) };
        default:
          throw new Error(`unexpected reply ${JSON.stringify(ok)}`);
      }
    },
    async seal(text) {
      return unb64((await peer.request('seal', name, { plaintext: b64(utf8(text)) })).sealed);
    },
    async add(keyPackages) {
      const ok = await peer.request('add', name, { key_packages: keyPackages.map(b64) });
      return { commit: unb64(ok.commit), welcome: unb64(ok.welcome) };
    },
    async remove(keys) {
      const ok = await peer.request('remove', name, { members: keys.map((k) => b64(Uint8Array.from(Buffer.from(k, 'hex')))) });
      return { commit: unb64(ok.commit) };
    },
    async state() {
      const ok = await peer.request('state', name);
      return { epoch: BigInt(ok.epoch as number), authenticator: toHex(unb64(ok.authenticator)), members: hexOf(ok.members) };
    },
  };
}

function browserMember(name: string, identity: Identity, group: RoomGroup): Member {
  const key = toHex(identity.publicKeyBytes);
  return {
    name,
    engine: 'browser',
    key,
    async process(bytes) {
      try {
        const r = await group.process(bytes);
        switch (r.kind) {
          case 'message':
            return { kind: 'message', sender: toHex(r.sender), text: fromUtf8(r.plaintext) ?? '' };
          case 'epoch':
            return {
              kind: 'epoch', epoch: r.epoch, own: r.own, discardedOwn: r.discarded.length > 0,
              added: sorted(r.added.map(toHex)), removed: sorted(r.removed.map(toHex)),
            };
          case 'removed':
            return { kind: 'removed', epoch: r.epoch };
          case 'lost-race':
            return { kind: 'lost-race' };
        }
      } catch (error) {
        if (error instanceof MlsError) return { kind: 'error', code: error.code, message: error.message };
        throw error;
      }
    },
    seal: (text) => group.seal(utf8(text)),
    add: (keyPackages) => group.add(keyPackages),
    remove: (keys) => group.remove(keys.map((k) => Uint8Array.from(Buffer.from(k, 'hex')))),
    state: () => Promise.resolve({ epoch: group.epoch, authenticator: toHex(group.authenticator()), members: sorted(group.members().map(toHex)) }),
  };
}

async function rustFounder(name: string): Promise<Member> {
  const ok = await peer.request('create', name, { room: ROOM });
  return rustMember(name, toHex(unb64(ok.public_key)));
}

async function browserFounder(name: string): Promise<Member> {
  const identity = await generateIdentity();
  return browserMember(name, identity, await createGroup(identity, ROOM));
}

async function rustNewcomer(name: string): Promise<Newcomer> {
  const ok = await peer.request('key_package', name, { room: ROOM });
  const key = toHex(unb64(ok.public_key));
  return {
    keyPackage: unb64(ok.key_package),
    key,
    async join(welcome) {
      await peer.request('join', name, { welcome: b64(welcome) });
      return rustMember(name, key);
    },
  };
}

async function browserNewcomer(name: string): Promise<Newcomer> {
  const identity = await generateIdentity();
  const made: { pending: PendingJoin; keyPackage: Bytes } = await keyPackage(identity, ROOM);
  return {
    keyPackage: made.keyPackage,
    key: toHex(identity.publicKeyBytes),
    join: async (welcome) => browserMember(name, identity, await made.pending.join(welcome)),
  };
}

// ---- The log and what every member must agree on ---------------------------------------

/** Padding: whichever engine sealed it, a PrivateMessage's ciphertext is a multiple of 32 bytes. */
function expectPadded(entry: Uint8Array): void {
  const decoded = decodeMlsMessage(entry, 0)?.[0];
  expect(decoded?.wireformat).toBe('mls_private_message');
  if (decoded?.wireformat === 'mls_private_message') expect(decoded.privateMessage.ciphertext.length % 32).toBe(0);
}

/** Every member applies one log entry, in order. */
async function log(members: Member[], entry: Uint8Array, padded = true): Promise<Outcome[]> {
  if (padded) expectPadded(entry);
  const out: Outcome[] = [];
  for (const m of members) out.push(await m.process(entry));
  return out;
}

/** Same epoch, same authenticator, same members, and those members are exactly `members`. */
async function expectAgreed(members: Member[], epoch: bigint): Promise<void> {
  const states = await Promise.all(members.map((m) => m.state()));
  const first = states[0];
  if (first === undefined) throw new Error('no members');
  for (const [i, s] of states.entries()) {
    const who = `${members[i]?.name ?? '?'} (${members[i]?.engine ?? '?'})`;
    expect(s.epoch, who).toBe(epoch);
    expect(s.authenticator, who).toBe(first.authenticator);
    expect(s.members, who).toEqual(sorted(members.map((m) => m.key)));
  }
}

/** `by` adds `newcomer`: its commit through the log to `members` (by among them), then the Welcome. */
async function admit(by: Member, members: Member[], newcomer: Newcomer): Promise<Member> {
  const { commit, welcome } = await by.add([newcomer.keyPackage]);
  const outcomes = await log(members, commit);
  for (const [i, o] of outcomes.entries()) {
    expect(o, members[i]?.name).toMatchObject({ kind: 'epoch', own: members[i] === by, added: [newcomer.key], removed: [] });
  }
  return newcomer.join(welcome);
}

/** `writer` seals `text`; every reader opens it with `writer` as its sender (its own copy as its own). */
async function expectEveryoneReads(writer: Member, readers: Member[], text: string, sealed?: Uint8Array): Promise<void> {
  const bytes = sealed ?? (await writer.seal(text));
  expectPadded(bytes);
  for (const reader of readers) {
    const got = await reader.process(bytes);
    if (reader === writer && reader.engine === 'rust') expect(got, reader.name).toEqual({ kind: 'own-message' });
    else expect(got, `${reader.name} reading ${writer.name}`).toEqual({ kind: 'message', sender: writer.key, text });
  }
}

// ---- Scenarios --------------------------------------------------------------------------

describe('openmls (Rust) and ts-mls (browser) in one StreamChat group', () => {
  it('Rust founds, a browser member joins from its Welcome; messages, an update, a Rust newcomer and its removal cross over', async () => {
    const r1 = await rustFounder('a-r1');
    await expectAgreed([r1], 0n);
    const b1 = await admit(r1, [r1], await browserNewcomer('a-b1'));
    await expectAgreed([r1, b1], 1n);
    await expectEveryoneReads(r1, [r1, b1], 'hello from rust');
    await expectEveryoneReads(b1, [r1, b1], 'hello from the browser');

    // An openmls commit with an UpdatePath (its leaf keeps its key): the browser applies it.
    const update = unb64((await peer.request('update', 'a-r1')).commit);
    const outcomes = await log([r1, b1], update);
    expect(outcomes).toEqual([
      { kind: 'epoch', epoch: 2n, own: true, discardedOwn: false, added: [], removed: [] },
      { kind: 'epoch', epoch: 2n, own: false, discardedOwn: false, added: [], removed: [] },
    ]);
    await expectAgreed([r1, b1], 2n);

    // The browser member admits a Rust newcomer; the Rust founder applies its commit.
    const r2 = await admit(b1, [r1, b1], await rustNewcomer('a-r2'));
    const all = [r1, b1, r2];
    await expectAgreed(all, 3n);
    for (const writer of all) await expectEveryoneReads(writer, all, `from ${writer.name}`);

    // The browser member removes the Rust newcomer, who opens nothing after.
    const { commit } = await b1.remove([r2.key]);
    expect(await log(all, commit)).toEqual([
      { kind: 'epoch', epoch: 4n, own: false, discardedOwn: false, added: [], removed: [r2.key] },
      { kind: 'epoch', epoch: 4n, own: true, discardedOwn: false, added: [], removed: [r2.key] },
      { kind: 'removed', epoch: 4n },
    ]);
    await expectAgreed([r1, b1], 4n);
    const after = await b1.seal('r2 has left');
    await expectEveryoneReads(b1, [r1, b1], 'r2 has left', after);
    expect(await r2.process(after)).toMatchObject({ kind: 'error', code: 'not-member' });
  });

  it('a browser member founds, Rust joins; a second Rust peer; Rust removes the browser member, who reads nothing after', async () => {
    const b = await browserFounder('b-b');
    const r1 = await admit(b, [b], await rustNewcomer('b-r1'));
    await expectAgreed([b, r1], 1n);
    await expectEveryoneReads(b, [b, r1], 'browser to rust');
    await expectEveryoneReads(r1, [b, r1], 'rust to browser');

    const r2 = await admit(b, [b, r1], await rustNewcomer('b-r2'));
    await expectAgreed([b, r1, r2], 2n);
    await expectEveryoneReads(r2, [b, r1, r2], 'the second rust peer');

    const { commit } = await r1.remove([b.key]);
    const [toB, toR1, toR2] = await log([b, r1, r2], commit);
    expect(toB).toEqual({ kind: 'removed', epoch: 3n });
    expect(toR1).toEqual({ kind: 'epoch', epoch: 3n, own: true, discardedOwn: false, added: [], removed: [b.key] });
    expect(toR2).toEqual({ kind: 'epoch', epoch: 3n, own: false, discardedOwn: false, added: [], removed: [b.key] });
    await expectAgreed([r1, r2], 3n);

    const after = await r2.seal('after the browser left');
    await expectEveryoneReads(r2, [r1, r2], 'after the browser left', after);
    expect(await b.process(after)).toMatchObject({ kind: 'error', code: 'not-member' });
    const later = await r1.seal('later still');
    expect(await b.process(later)).toMatchObject({ kind: 'error', code: 'not-member' });
    await expect(b.seal('still here?')).rejects.toBeInstanceOf(MlsError);
  });

  it('both engines refuse the same hostile commits from a raw ts-mls member, and both apply her ordinary one', async () => {
    // mallory runs ts-mls directly, so she can commit what StreamChat's engines never make.
    const suite = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));
    const keys = await suite.signature.keygen();
    const fresh = await suite.signature.keygen();
    const own = await generateKeyPackageWithKey({ credentialType: 'basic', identity: keys.publicKey }, defaultCapabilities(),
      defaultLifetime, [], { signKey: keys.signKey, publicKey: keys.publicKey }, suite);
    const founded = await mlsCreateGroup(await groupIdOf(ROOM), own.publicPackage, own.privatePackage, [], suite);
    const rustJoining = await rustNewcomer('h-r');
    const browserJoining = await browserNewcomer('h-b');
    // A third newcomer who never joins: the leaf the extensions commit below removes.
    const absent = await browserNewcomer('h-x');
    const packageOf = (bytes: Uint8Array) => {
      const decoded = decodeMlsMessage(bytes, 0)?.[0];
      if (decoded?.wireformat !== 'mls_key_package') throw new Error('not a KeyPackage');
      return decoded.keyPackage;
    };
    const invite = await createCommit({ state: founded, cipherSuite: suite }, {
      extraProposals: [rustJoining, browserJoining, absent].map((n) => ({ proposalType: 'add' as const, add: { keyPackage: packageOf(n.keyPackage) } })),
      ratchetTreeExtension: true,
      wireAsPublicMessage: false,
    });
    if (invite.welcome === undefined) throw new Error('no Welcome');
    const welcome = encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: invite.welcome });
    const members = [await rustJoining.join(welcome), await browserJoining.join(welcome)];
    const malloryKey = toHex(keys.publicKey);
    const expectAtInvite = async (): Promise<void> => {
      for (const m of members) {
        const state = await m.state();
        expect(state.epoch, m.name).toBe(1n);
        expect(state.authenticator, m.name).toBe(toHex(invite.newState.keySchedule.epochAuthenticator));
        expect(state.members, m.name).toEqual(sorted([malloryKey, absent.key, ...members.map((x) => x.key)]));
      }
    };
    await expectAtInvite();
    // Her state in epoch 1; each commit she sends uses up one generation of her handshake
    // ratchet, as a real sender's would (ts-mls's createCommit does not keep that).
    let mallory: ClientState = invite.newState;
    const commitAt = async (state: ClientState, extraProposals: Proposal[], cipherSuite = suite) => {
      const made = await createCommit({ state, cipherSuite }, { extraProposals, wireAsPublicMessage: false });
      return { bytes: encodeMlsMessage(made.commit), newState: made.newState };
    };
    /** What a real sender's state does after sending a handshake message: one step of its ratchet. */
    const sent = async (): Promise<void> => {
      mallory = { ...mallory, secretTree: (await consumeRatchet(mallory.secretTree, 0, 'commit', suite)).newTree };
    };
    const generation0 = invite.newState.secretTree;
    const extensionsProposal: Proposal = { proposalType: 'group_context_extensions', groupContextExtensions: { extensions: [] } };

    // Which refusals use up the commit's key must match too: openmls keeps its ratchet's
    // step only when the commit passed its own checks (the Rust engine's rules come after).
    // 1. A GroupContextExtensions proposal alone, without the UpdatePath it requires (ts-mls
    //    makes it so): openmls refuses it as malformed, and the key is not used up.
    const noPath = await commitAt(mallory, [extensionsProposal]);
    expect(await log(members, noPath.bytes, false)).toMatchObject([
      { kind: 'error', code: 'malformed', message: expect.stringMatching(/RequiredPathNotFound/) as unknown },
      { kind: 'error', code: 'invalid', message: expect.stringMatching(/UpdatePath its proposals require/) as unknown },
    ]);
    await expectAtInvite();

    // 2. The same proposal with a Remove beside it, so with an UpdatePath, at the same
    //    generation: it opens in both, and is refused by both engines' rule (Add and Remove
    //    only), which uses up its key.
    const extensions = await commitAt(mallory, [extensionsProposal, { proposalType: 'remove', remove: { removed: 3 } }]);
    await sent();
    expect(await log(members, extensions.bytes, false)).toMatchObject([
      { kind: 'error', code: 'refused', message: expect.stringMatching(/GroupContextExtensions/) as unknown },
      { kind: 'error', code: 'invalid', message: expect.stringMatching(/only Add and Remove/) as unknown },
    ]);
    await expectAtInvite();

    // 3. An UpdatePath leaf with a fresh signature key (and a credential naming it), signed
    //    by that key, in a commit signed with her current one.
    const leafLabel = toHex(utf8('MLS 1.0 LeafNodeTBS'));
    const hostileSuite = {
      ...suite,
      signature: {
        sign: (signKey: Uint8Array, message: Uint8Array) =>
          suite.signature.sign(toHex(message.subarray(1, 1 + leafLabel.length / 2)) === leafLabel ? fresh.signKey : signKey, message),
        verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => suite.signature.verify(publicKey, message, signature),
        keygen: () => suite.signature.keygen(),
      },
    };
    const tree = mallory.ratchetTree.slice();
    const leaf = tree[0];
    if (leaf?.nodeType !== 'leaf') throw new Error('leaf 0 is not mallory');
    tree[0] = { ...leaf, leaf: { ...leaf.leaf, signaturePublicKey: fresh.publicKey, credential: { credentialType: 'basic', identity: fresh.publicKey } } };
    const newKey = await commitAt({ ...mallory, ratchetTree: tree }, [], hostileSuite);
    await sent();
    expect(await log(members, newKey.bytes, false)).toMatchObject([
      { kind: 'error', code: 'bad-credential', message: expect.stringMatching(/identity key/) as unknown },
      { kind: 'error', code: 'invalid', message: expect.stringMatching(/signature key/) as unknown },
    ]);
    await expectAtInvite();

    // 4. A standalone proposal (an Add): refused by both, and its key used up by both.
    const kp = decodeMlsMessage((await browserNewcomer('h-y')).keyPackage, 0)?.[0];
    if (kp?.wireformat !== 'mls_key_package') throw new Error('not a KeyPackage');
    const proposal = await createProposal(mallory, false, { proposalType: 'add', add: { keyPackage: kp.keyPackage } }, suite);
    const afterProposal = mallory.secretTree;
    await sent();
    expect(await log(members, encodeMlsMessage(proposal.message), false)).toMatchObject([
      { kind: 'error', code: 'refused', message: expect.stringMatching(/standalone proposal/) as unknown },
      { kind: 'error', code: 'invalid', message: expect.stringMatching(/standalone proposals/) as unknown },
    ]);
    await expectAtInvite();

    // 5. Ordinary commits at the generations those refusals used up: refused by both (the
    //    browser engine once applied them, and Rust did not).
    for (const used of [generation0, afterProposal]) {
      const reused = await commitAt({ ...mallory, secretTree: used }, []);
      expect(await log(members, reused.bytes, false)).toMatchObject([{ kind: 'error', code: 'undecryptable' }, { kind: 'error', code: 'invalid' }]);
      await expectAtInvite();
    }

    // The control: her ordinary update at her next generation, applied by both.
    const ordinary = await commitAt(mallory, []);
    for (const o of await log(members, ordinary.bytes, false)) {
      expect(o).toEqual({ kind: 'epoch', epoch: 2n, own: false, discardedOwn: false, added: [], removed: [] });
    }
    for (const m of members) expect((await m.state()).authenticator).toBe(toHex(ordinary.newState.keySchedule.epochAuthenticator));
    await expectEveryoneReads(members[0] as Member, members, 'after mallory');
    await expectEveryoneReads(members[1] as Member, members, 'after mallory');
  });

  for (const first of ['rust', 'browser'] as const) {
    it(`a race for one epoch, the ${first} commit first on the log: it wins everywhere, the other is stale; an older message still opens`, async () => {
      const tag = `race-${first}`;
      // Two of each engine: r1 and b1 race, r2 and b2 watch.
      const r1 = await rustFounder(`${tag}-r1`);
      const b1 = await admit(r1, [r1], await browserNewcomer(`${tag}-b1`));
      const r2 = await admit(b1, [r1, b1], await rustNewcomer(`${tag}-r2`));
      const b2 = await admit(r2, [r1, b1, r2], await browserNewcomer(`${tag}-b2`));
      const members = [r1, b1, r2, b2];
      await expectAgreed(members, 3n);

      // Sealed in epoch 3, delivered after the commit to epoch 4.
      const lateFromRust = await r2.seal('sealed in epoch 3 by rust');
      const lateFromBrowser = await b2.seal('sealed in epoch 3 by the browser');

      // Both commit for epoch 3 at once, each adding a newcomer.
      const forRust = await rustNewcomer(`${tag}-r3`);
      const forBrowser = await browserNewcomer(`${tag}-b3`);
      const fromRust = await r1.add([forRust.keyPackage]);
      const fromBrowser = await b1.add([forBrowser.keyPackage]);
      const [winner, loser, winnerAuthor, loserAuthor, winnerNewcomer, loserNewcomer] = first === 'rust'
        ? [fromRust, fromBrowser, r1, b1, forRust, forBrowser]
        : [fromBrowser, fromRust, b1, r1, forBrowser, forRust];

      const applied = await log(members, winner.commit);
      for (const [i, o] of applied.entries()) {
        const m = members[i];
        expect(o, m?.name).toEqual({
          kind: 'epoch', epoch: 4n, own: m === winnerAuthor, discardedOwn: m === loserAuthor, added: [winnerNewcomer.key], removed: [],
        });
      }
      const newcomer = await winnerNewcomer.join(winner.welcome);
      const now = [...members, newcomer];
      await expectAgreed(now, 4n);

      // The loser comes next on the log: its author learns it lost, everyone else refuses it as stale.
      const refused = await log(now, loser.commit);
      for (const [i, o] of refused.entries()) {
        const m = now[i];
        // The Rust engine forgot its discarded commit when the winner was applied: to it
        // the loser is one more stale commit; the browser engine names it.
        if (m === loserAuthor && m.engine === 'browser') expect(o, m.name).toEqual({ kind: 'lost-race' });
        else expect(o, m?.name).toMatchObject({ kind: 'error', code: 'stale' });
      }
      await expectAgreed(now, 4n);
      // The loser's Welcome (never handed over in StreamChat: its commit was not applied)
      // leads into an epoch 4 that nobody else is in.
      const stranded = await loserNewcomer.join(loser.welcome);
      const strandedState = await stranded.state();
      expect(strandedState.epoch).toBe(4n);
      expect(strandedState.authenticator).not.toBe((await r1.state()).authenticator);
      expect((await stranded.process(await r1.seal('not for the stranded'))).kind).toBe('error');

      // The messages sealed in epoch 3 still open after the commit, for those who were members then.
      await expectEveryoneReads(r2, members, 'sealed in epoch 3 by rust', lateFromRust);
      await expectEveryoneReads(b2, members, 'sealed in epoch 3 by the browser', lateFromBrowser);
      expect((await newcomer.process(lateFromRust)).kind).toBe('error');

      // The loser's author commits again on the new epoch; everyone follows.
      const retryFor = loserNewcomer === forRust ? await rustNewcomer(`${tag}-r4`) : await browserNewcomer(`${tag}-b4`);
      const second = await admit(loserAuthor, now, retryFor);
      const everyone = [...now, second];
      await expectAgreed(everyone, 5n);
      for (const writer of everyone) await expectEveryoneReads(writer, everyone, `epoch 5 from ${writer.name}`);
    });
  }
});
