// Privacy v2 (issue #19): the MLS room group as its members would see it, driven the way
// StreamChat drives it: every commit goes to an ordered room log and every member, its
// author included, applies the log in order.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Identity, fingerprintOf, generateIdentity } from '../src/crypto';
import { fromUtf8, toHex, utf8 } from '../src/encoding';
import { MlsError, type MlsErrorCode, type Processed, type RoomGroup, createGroup, groupIdOf, keyPackage } from '../src/mls';
import {
  createCommit, createGroup as mlsCreateGroup, decodeMlsMessage, defaultCapabilities, defaultLifetime, encodeMlsMessage,
  generateKeyPackage, generateKeyPackageWithKey, getCiphersuiteFromName, getCiphersuiteImpl, type Proposal,
} from 'ts-mls';
import { consumeRatchet } from 'ts-mls/secretTree.js';

const ROOM = 'AAECAwQFBgcICQoLDA0ODw';

interface Member {
  readonly name: string;
  readonly identity: Identity;
  group: RoomGroup;
}

const hex = (keys: Uint8Array[]): string[] => keys.map(toHex).sort();

async function expectMlsError(promise: Promise<unknown>, code?: MlsErrorCode): Promise<MlsError> {
  const error: unknown = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(MlsError);
  if (code !== undefined) expect((error as MlsError).code).toBe(code);
  return error as MlsError;
}

/** Every member applies one log entry, in order; returns what each saw. */
async function applyAll(members: Member[], entry: Uint8Array): Promise<Processed[]> {
  const out: Processed[] = [];
  for (const m of members) out.push(await m.group.process(entry));
  return out;
}

async function found(name: string): Promise<Member> {
  const identity = await generateIdentity();
  return { name, identity, group: await createGroup(identity, ROOM) };
}

/** `by` adds a newcomer: the commit goes through the log to `members`, the Welcome to the newcomer. */
async function join(name: string, by: Member, members: Member[]): Promise<Member> {
  const identity = await generateIdentity();
  const { pending, keyPackage: kp } = await keyPackage(identity, ROOM);
  const { commit, welcome } = await by.group.add([kp]);
  const results = await applyAll(members, commit);
  for (const [i, r] of results.entries()) {
    expect(r).toMatchObject({ kind: 'epoch', own: members[i] === by });
    if (r.kind === 'epoch') expect(hex(r.added)).toEqual(hex([identity.publicKeyBytes]));
  }
  return { name, identity, group: await pending.join(welcome) };
}

function expectConverged(members: Member[]): void {
  const [first, ...rest] = members;
  if (first === undefined) return;
  for (const m of rest) {
    expect(m.group.epoch).toBe(first.group.epoch);
    expect(toHex(m.group.authenticator())).toBe(toHex(first.group.authenticator()));
    expect(hex(m.group.members())).toEqual(hex(first.group.members()));
  }
  expect(hex(first.group.members())).toEqual(hex(members.map((m) => m.identity.publicKeyBytes)));
}

async function expectReads(reader: Member, writer: Member, text: string, sealed: Uint8Array): Promise<void> {
  const got = await reader.group.process(sealed);
  expect(got.kind).toBe('message');
  if (got.kind !== 'message') return;
  expect(fromUtf8(got.plaintext)).toBe(text);
  expect(toHex(got.sender)).toBe(toHex(writer.identity.publicKeyBytes));
}

async function trio(): Promise<[Member, Member, Member]> {
  const alice = await found('alice');
  const bob = await join('bob', alice, [alice]);
  const carol = await join('carol', alice, [alice, bob]);
  return [alice, bob, carol];
}

describe('MLS room group', () => {
  it('three members who joined one by one agree on the epoch and read each other with the right sender', async () => {
    const alice = await found('alice');
    expect(alice.group.epoch).toBe(0n);
    const bob = await join('bob', alice, [alice]);
    expectConverged([alice, bob]);
    // Carol is added by bob this time: any member can admit.
    const carol = await join('carol', bob, [alice, bob]);
    expectConverged([alice, bob, carol]);
    expect(alice.group.epoch).toBe(2n);

    const everyone = [alice, bob, carol];
    for (const writer of everyone) {
      const text = `hello from ${writer.name}`;
      const sealed = await writer.group.seal(utf8(text));
      // The author reads its own message back from the log like everyone else.
      for (const reader of everyone) await expectReads(reader, writer, text, sealed);
    }
  });

  it('the group id is SHA-256 of the label and the room id; messages and commits are padded to 32 bytes', async () => {
    const alice = await found('alice');
    const expected = new Uint8Array(await crypto.subtle.digest('SHA-256', utf8(`streamchat mls v1 group${ROOM}`)));
    expect(toHex(await groupIdOf(ROOM))).toBe(toHex(expected));
    for (const length of [0, 1, 31, 32, 63, 64, 100, 1000, 20000]) {
      const decoded = decodeMlsMessage(await alice.group.seal(new Uint8Array(length)), 0)?.[0];
      expect(decoded?.wireformat).toBe('mls_private_message');
      if (decoded?.wireformat !== 'mls_private_message') return;
      expect(toHex(decoded.privateMessage.groupId)).toBe(toHex(expected));
      // The ciphertext, padded content and 16-byte AES-GCM tag, is a multiple of 32 (openmls's rule).
      expect(decoded.privateMessage.ciphertext.length % 32).toBe(0);
    }
    // Commits too, and the padded commit is applied as usual.
    let members = [alice];
    for (const name of ['bob', 'carol', 'dave']) {
      const identity = await generateIdentity();
      const { pending, keyPackage: kp } = await keyPackage(identity, ROOM);
      const { commit, welcome } = await alice.group.add([kp]);
      const decoded = decodeMlsMessage(commit, 0)?.[0];
      expect(decoded?.wireformat).toBe('mls_private_message');
      if (decoded?.wireformat === 'mls_private_message') expect(decoded.privateMessage.ciphertext.length % 32).toBe(0);
      await applyAll(members, commit);
      members = [...members, { name, identity, group: await pending.join(welcome) }];
      expectConverged(members);
    }
    const last = members[3];
    if (last === undefined) throw new Error('no dave');
    const { commit } = await alice.group.remove([last.identity.publicKeyBytes]);
    const decoded = decodeMlsMessage(commit, 0)?.[0];
    if (decoded?.wireformat === 'mls_private_message') expect(decoded.privateMessage.ciphertext.length % 32).toBe(0);
    await applyAll(members, commit);
    expectConverged(members.slice(0, 3));
  });

  it('a newcomer cannot open a message sealed before it joined', async () => {
    const alice = await found('alice');
    const bob = await join('bob', alice, [alice]);
    const before = await alice.group.seal(utf8('before carol'));
    const carol = await join('carol', alice, [alice, bob]);
    await expectReads(bob, alice, 'before carol', before);
    await expectMlsError(carol.group.process(before), 'stale');
    const after = await alice.group.seal(utf8('after carol'));
    await expectReads(carol, alice, 'after carol', after);
  });

  it('a removed member cannot open what follows; the others can', async () => {
    const [alice, bob, carol] = await trio();
    const { commit } = await bob.group.remove([carol.identity.publicKeyBytes]);
    // Nothing changes until the commit comes back through the log.
    expect(bob.group.epoch).toBe(2n);
    const [a, b, c] = await applyAll([alice, bob, carol], commit);
    expect(a).toMatchObject({ kind: 'epoch', epoch: 3n, own: false, added: [] });
    expect(b).toMatchObject({ kind: 'epoch', epoch: 3n, own: true });
    if (a?.kind === 'epoch') expect(hex(a.removed)).toEqual(hex([carol.identity.publicKeyBytes]));
    expect(c).toMatchObject({ kind: 'removed' });
    expect(carol.group.active).toBe(false);
    expectConverged([alice, bob]);

    const secret = await alice.group.seal(utf8('carol has left'));
    await expectReads(bob, alice, 'carol has left', secret);
    await expectMlsError(carol.group.process(secret), 'not-member');
    await expectMlsError(carol.group.seal(utf8('still here?')), 'not-member');
    await expectMlsError(carol.group.remove([alice.identity.publicKeyBytes]), 'not-member');
  });

  it('two commits for one epoch: the first in the log wins everywhere, the loser recommits on the new epoch', async () => {
    const [alice, bob, carol] = await trio();
    const dave = await generateIdentity();
    const daveKp = await keyPackage(dave, ROOM);
    const erin = await generateIdentity();
    const erinKp = await keyPackage(erin, ROOM);
    const everyone = [alice, bob, carol];

    const fromBob = await bob.group.add([daveKp.keyPackage]);
    const fromCarol = await carol.group.add([erinKp.keyPackage]);
    // The log orders bob's first.
    const first = await applyAll(everyone, fromBob.commit);
    expect(first.map((r) => r.kind)).toEqual(['epoch', 'epoch', 'epoch']);
    expect(first[1]).toMatchObject({ own: true, discarded: [] });
    const carolSaw = first[2];
    expect(carolSaw).toMatchObject({ kind: 'epoch', own: false });
    // Carol learns at once that her add was dropped, and what it was.
    if (carolSaw?.kind === 'epoch') {
      expect(carolSaw.discarded).toHaveLength(1);
      expect(toHex(carolSaw.discarded[0]?.add[0] ?? new Uint8Array())).toBe(toHex(erinKp.keyPackage));
    }
    const daveMember: Member = { name: 'dave', identity: dave, group: await daveKp.pending.join(fromBob.welcome) };
    const withDave = [...everyone, daveMember];
    expectConverged(withDave);

    // Carol's commit comes next in the log: refused as stale by everyone, and carol's
    // group says her own commit lost the race.
    await expectMlsError(alice.group.process(fromCarol.commit), 'stale');
    await expectMlsError(bob.group.process(fromCarol.commit), 'stale');
    await expectMlsError(daveMember.group.process(fromCarol.commit), 'stale');
    expect(await carol.group.process(fromCarol.commit)).toMatchObject({ kind: 'lost-race' });
    // Its Welcome leads nowhere usable either: it was for an epoch that never happened.
    expectConverged(withDave);

    // Carol recommits on the new epoch, with a fresh KeyPackage for erin.
    const erinKp2 = await keyPackage(erin, ROOM);
    const retry = await carol.group.add([erinKp2.keyPackage]);
    const second = await applyAll(withDave, retry.commit);
    expect(second.map((r) => r.kind)).toEqual(['epoch', 'epoch', 'epoch', 'epoch']);
    expect(second[2]).toMatchObject({ own: true });
    const erinMember: Member = { name: 'erin', identity: erin, group: await erinKp2.pending.join(retry.welcome) };
    const all = [...withDave, erinMember];
    expectConverged(all);
    expect(alice.group.epoch).toBe(4n);
    const hi = await erinMember.group.seal(utf8('hi all'));
    for (const m of all) await expectReads(m, erinMember, 'hi all', hi);
  });

  it('a message sealed in epoch N that arrives after the commit to N+1 still opens', async () => {
    const [alice, bob, carol] = await trio();
    const late = await carol.group.seal(utf8('sent just before the commit'));
    const { commit } = await alice.group.remove([bob.identity.publicKeyBytes]);
    await applyAll([alice, bob, carol], commit);
    expect(alice.group.epoch).toBe(3n);
    await expectReads(alice, carol, 'sent just before the commit', late);
    // Bob was removed by that commit, but the message was sealed while he was a member.
    await expectReads(bob, carol, 'sent just before the commit', late);
    // Opening twice is refused (the key was used up).
    await expectMlsError(alice.group.process(late));
  });

  it('messages sealed and read while a commit is pending still work once it is applied', async () => {
    const [alice, bob, carol] = await trio();
    const kp = await keyPackage(await generateIdentity(), ROOM);
    const { commit } = await alice.group.add([kp.keyPackage]);
    expect(alice.group.hasPending).toBe(true);
    const fromAlice = await alice.group.seal(utf8('alice, commit pending'));
    const fromBob1 = await bob.group.seal(utf8('bob 1'));
    const fromBob2 = await bob.group.seal(utf8('bob 2'));
    await expectReads(alice, bob, 'bob 1', fromBob1);
    await applyAll([alice, bob, carol], commit);
    expect(alice.group.hasPending).toBe(false);
    // Old-epoch messages after the commit: read once, never twice.
    await expectReads(alice, bob, 'bob 2', fromBob2);
    await expectMlsError(alice.group.process(fromBob1));
    await expectMlsError(alice.group.process(fromBob2));
    await expectReads(bob, alice, 'alice, commit pending', fromAlice);
    await expectReads(carol, alice, 'alice, commit pending', fromAlice);
    await expectReads(carol, bob, 'bob 1', fromBob1);
    await expectReads(alice, alice, 'alice, commit pending', fromAlice);
    const now = await alice.group.seal(utf8('new epoch'));
    for (const m of [bob, carol]) await expectReads(m, alice, 'new epoch', now);
  });

  it('a member that missed a commit is told so, and is not moved by what follows', async () => {
    const [alice, bob, carol] = await trio();
    const first = await alice.group.add([(await keyPackage(await generateIdentity(), ROOM)).keyPackage]);
    await applyAll([alice, bob], first.commit); // carol misses it
    const second = await bob.group.remove([alice.identity.publicKeyBytes]);
    const message = await bob.group.seal(utf8('epoch 3'));
    await expectMlsError(carol.group.process(second.commit), 'future');
    await expectMlsError(carol.group.process(message), 'future');
    expect(carol.group.epoch).toBe(2n);
    // Once the missing commit arrives, the log applies in order again.
    expect(await carol.group.process(first.commit)).toMatchObject({ kind: 'epoch', epoch: 3n });
    await expectReads(carol, bob, 'epoch 3', message);
    expect(await carol.group.process(second.commit)).toMatchObject({ kind: 'epoch', epoch: 4n });
  });

  it('a message for an epoch beyond the 4 kept no longer opens', async () => {
    const alice = await found('alice');
    const bob = await join('bob', alice, [alice]);
    const old = await bob.group.seal(utf8('old'));
    for (let i = 0; i < 5; i += 1) {
      const kp = await keyPackage(await generateIdentity(), ROOM);
      const { commit } = await alice.group.add([kp.keyPackage]);
      await applyAll([alice, bob], commit);
    }
    await expectMlsError(alice.group.process(old), 'stale');
  });

  it('garbage into process and join is an MlsError, never another exception', async () => {
    const [alice, bob] = await trio();
    const identity = await generateIdentity();
    const { pending, keyPackage: kp } = await keyPackage(identity, ROOM);
    const sealed = await bob.group.seal(utf8('a real message'));
    const { commit, welcome } = await bob.group.add([kp]);
    const random = crypto.getRandomValues(new Uint8Array(300));
    const inputs: Uint8Array[] = [new Uint8Array(0), new Uint8Array(1), random, new Uint8Array(300)];
    for (const real of [sealed, commit, welcome, kp]) {
      for (const cut of [1, 2, 4, 8, 20, real.length >> 1, real.length - 1]) inputs.push(real.subarray(0, cut));
      const flipped = real.slice();
      flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 0x40;
      inputs.push(flipped);
      inputs.push(new Uint8Array([...real, 0]));
    }
    inputs.push(welcome, kp); // well-formed, but not what process takes
    for (const input of inputs) await expectMlsError(alice.group.process(input));
    for (const input of inputs.filter((i) => i !== welcome)) await expectMlsError(pending.join(input));
    // After all that, the real ones still work.
    await expectReads(alice, bob, 'a real message', sealed);
    await expectMlsError(alice.group.add([random]), 'malformed');
    await expectMlsError(alice.group.remove([random.subarray(0, 32)]), 'not-member');
  });

  it('mutated and random bytes, many of them, are all refused with an MlsError', async () => {
    const [alice, bob] = await trio();
    const identity = await generateIdentity();
    const { pending, keyPackage: kp } = await keyPackage(identity, ROOM);
    const sealed = await bob.group.seal(utf8('a real message'));
    const { commit, welcome } = await bob.group.add([kp]);
    const reals = [sealed, commit, welcome, kp];
    const mutated = fc.oneof(
      fc.uint8Array({ maxLength: 512 }),
      fc.tuple(fc.constantFrom(...reals), fc.nat(), fc.integer({ min: 1, max: 255 })).map(([real, at, xor]) => {
        const out = real.slice();
        const i = at % out.length;
        out[i] = (out[i] ?? 0) ^ xor;
        return out;
      }),
      fc.tuple(fc.constantFrom(...reals), fc.nat()).map(([real, at]) => real.slice(0, at % real.length)),
    );
    await fc.assert(
      fc.asyncProperty(mutated, async (bytes) => {
        await expectMlsError(alice.group.process(bytes));
        await expectMlsError(pending.join(bytes));
      }),
      { numRuns: 150, seed: 19 },
    );
    await expectReads(alice, bob, 'a real message', sealed);
  });

  it('a KeyPackage whose credential is not its signature key is refused', async () => {
    const alice = await found('alice');
    const suite = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));
    const mallory = await generateKeyPackage({ credentialType: 'basic', identity: utf8('alice') }, defaultCapabilities(),
      defaultLifetime, [], suite);
    const bytes = encodeMlsMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: mallory.publicPackage });
    await expectMlsError(alice.group.add([bytes]), 'invalid');
    expect(alice.group.hasPending).toBe(false);
  });

  it('a commit with a proposal other than Add or Remove is refused; the same member\'s plain Add is applied', async () => {
    // mallory runs ts-mls directly, so she can commit what StreamChat's engines never make.
    const suite = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));
    const keys = await suite.signature.keygen();
    const own = await generateKeyPackageWithKey({ credentialType: 'basic', identity: keys.publicKey }, defaultCapabilities(),
      defaultLifetime, [], { signKey: keys.signKey, publicKey: keys.publicKey }, suite);
    const founded = await mlsCreateGroup(await groupIdOf(ROOM), own.publicPackage, own.privatePackage, [], suite);
    const commit = (state: typeof founded, extraProposals: Proposal[]) =>
      createCommit({ state, cipherSuite: suite }, { extraProposals, ratchetTreeExtension: true, wireAsPublicMessage: false });
    const newcomer = async (name: string) => {
      const identity = await generateIdentity();
      const made = await keyPackage(identity, ROOM);
      const decoded = decodeMlsMessage(made.keyPackage, 0)?.[0];
      if (decoded?.wireformat !== 'mls_key_package') throw new Error('not a KeyPackage');
      return { name, identity, pending: made.pending, keyPackage: decoded.keyPackage };
    };
    const welcomeOf = (made: Awaited<ReturnType<typeof commit>>) => {
      if (made.welcome === undefined) throw new Error('no Welcome');
      return encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: made.welcome });
    };

    const bobJoining = await newcomer('bob');
    // A second newcomer who never joins: the leaf the hostile commit removes.
    const absent = await newcomer('absent');
    const invite = await commit(founded, [bobJoining, absent].map((n) => ({ proposalType: 'add' as const, add: { keyPackage: n.keyPackage } })));
    const bob = await bobJoining.pending.join(welcomeOf(invite));
    const epoch = bob.epoch;

    // Alone, ts-mls commits it without the UpdatePath RFC 9420 requires (openmls refuses
    // that as malformed, without using up the commit's key: neither does bob).
    const extensions: Proposal = { proposalType: 'group_context_extensions', groupContextExtensions: { extensions: [] } };
    const noPath = await commit(invite.newState, [extensions]);
    expect((await expectMlsError(bob.process(encodeMlsMessage(noPath.commit)), 'invalid')).message).toMatch(/UpdatePath/);
    expect(bob.epoch).toBe(epoch);
    // With a Remove beside it, the commit has its UpdatePath and is refused for the
    // proposal itself (at the same generation, which the refusal above left unused).
    const hostile = await commit(invite.newState, [extensions, { proposalType: 'remove', remove: { removed: 2 } }]);
    const refused = await expectMlsError(bob.process(encodeMlsMessage(hostile.commit)), 'invalid');
    expect(refused.message).toMatch(/only Add and Remove/);
    expect(bob.epoch).toBe(epoch);

    // The control: mallory adds carol the ordinary way, and bob follows. At her next
    // handshake generation: the refused commit used up the key of its own, in both engines.
    const carolJoining = await newcomer('carol');
    const next = { ...invite.newState, secretTree: (await consumeRatchet(invite.newState.secretTree, 0, 'commit', suite)).newTree };
    const ordinary = await commit(next, [{ proposalType: 'add', add: { keyPackage: carolJoining.keyPackage } }]);
    const applied = await bob.process(encodeMlsMessage(ordinary.commit));
    expect(applied).toMatchObject({ kind: 'epoch', own: false, epoch: epoch + 1n });
    if (applied.kind === 'epoch') expect(hex(applied.added)).toEqual(hex([carolJoining.identity.publicKeyBytes]));
    const carol = await carolJoining.pending.join(welcomeOf(ordinary));
    expect(toHex(carol.authenticator())).toBe(toHex(bob.authenticator()));
  });

  it("a commit whose UpdatePath gives its committer a new signature key is refused; the same member's plain commit is applied", async () => {
    // mallory runs ts-mls directly: her UpdatePath leaf carries a fresh key (and a credential
    // naming it), signed with that key, inside a commit signed with her current key, so
    // every check ts-mls makes passes. The Rust engine refuses such a commit.
    const suite = await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'));
    const keys = await suite.signature.keygen();
    const fresh = await suite.signature.keygen();
    const own = await generateKeyPackageWithKey({ credentialType: 'basic', identity: keys.publicKey }, defaultCapabilities(),
      defaultLifetime, [], { signKey: keys.signKey, publicKey: keys.publicKey }, suite);
    const founded = await mlsCreateGroup(await groupIdOf(ROOM), own.publicPackage, own.privatePackage, [], suite);
    const bobIdentity = await generateIdentity();
    const bobJoining = await keyPackage(bobIdentity, ROOM);
    const bobPackage = decodeMlsMessage(bobJoining.keyPackage, 0)?.[0];
    if (bobPackage?.wireformat !== 'mls_key_package') throw new Error('not a KeyPackage');
    const invite = await createCommit({ state: founded, cipherSuite: suite }, {
      extraProposals: [{ proposalType: 'add', add: { keyPackage: bobPackage.keyPackage } }], ratchetTreeExtension: true, wireAsPublicMessage: false,
    });
    if (invite.welcome === undefined) throw new Error('no Welcome');
    const bob = await bobJoining.pending.join(encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: invite.welcome }));
    const epoch = bob.epoch;

    // Her own leaf (leaf 0) now names the fresh key; ts-mls copies it into the UpdatePath
    // leaf, whose LeafNodeTBS she signs with the fresh key, the commit itself with the old one.
    const leafLabel = utf8('MLS 1.0 LeafNodeTBS');
    const isLeafSignature = (message: Uint8Array): boolean =>
      message.length > leafLabel.length && toHex(message.subarray(1, 1 + leafLabel.length)) === toHex(leafLabel);
    const hostileSuite = {
      ...suite,
      signature: {
        sign: (signKey: Uint8Array, message: Uint8Array) => suite.signature.sign(isLeafSignature(message) ? fresh.signKey : signKey, message),
        verify: (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => suite.signature.verify(publicKey, message, signature),
        keygen: () => suite.signature.keygen(),
      },
    };
    const tree = invite.newState.ratchetTree.slice();
    const leaf = tree[0];
    if (leaf?.nodeType !== 'leaf') throw new Error('leaf 0 is not mallory');
    tree[0] = { ...leaf, leaf: { ...leaf.leaf, signaturePublicKey: fresh.publicKey, credential: { credentialType: 'basic', identity: fresh.publicKey } } };
    const hostile = await createCommit({ state: { ...invite.newState, ratchetTree: tree }, cipherSuite: hostileSuite }, { wireAsPublicMessage: false });
    await expectMlsError(bob.process(encodeMlsMessage(hostile.commit)), 'invalid');
    expect(bob.epoch).toBe(epoch);
    expect(hex(bob.members())).toEqual(hex([keys.publicKey, bobIdentity.publicKeyBytes]));

    // The refused commit used up its key (as openmls does while decrypting): an ordinary
    // commit at the same generation of mallory's handshake ratchet is refused too, or a
    // browser member would apply what a Rust member refuses.
    const reused = await createCommit({ state: invite.newState, cipherSuite: suite }, { wireAsPublicMessage: false });
    await expectMlsError(bob.process(encodeMlsMessage(reused.commit)), 'invalid');
    expect(bob.epoch).toBe(epoch);

    // The control: at her next generation, mallory commits an update the ordinary way, and bob follows.
    const next = { ...invite.newState, secretTree: (await consumeRatchet(invite.newState.secretTree, 0, 'commit', suite)).newTree };
    const ordinary = await createCommit({ state: next, cipherSuite: suite }, { wireAsPublicMessage: false });
    expect(await bob.process(encodeMlsMessage(ordinary.commit))).toMatchObject({ kind: 'epoch', own: false, epoch: epoch + 1n });
    expect(toHex(bob.authenticator())).toBe(toHex(ordinary.newState.keySchedule.epochAuthenticator));
    expect(hex(bob.members())).toEqual(hex([keys.publicKey, bobIdentity.publicKeyBytes]));
  });

  it('a Welcome for someone else, or for another room, is refused with its reason', async () => {
    const alice = await found('alice');
    const bobId = await generateIdentity();
    const bob = await keyPackage(bobId, ROOM);
    const carol = await keyPackage(await generateIdentity(), ROOM);
    const { welcome } = await alice.group.add([bob.keyPackage]);
    await expectMlsError(carol.pending.join(welcome), 'not-for-me');
    const elsewhere = await keyPackage(bobId, 'another-room');
    const other = await alice.group.add([elsewhere.keyPackage]);
    await expectMlsError(elsewhere.pending.join(other.welcome), 'wrong-group');
  });

  it("each member's entry in members() is its fingerprint key in every epoch", async () => {
    const alice = await found('alice');
    const bob = await join('bob', alice, [alice]);
    const carol = await join('carol', bob, [alice, bob]);
    const everyone = [alice, bob, carol];
    const check = async (present: Member[]): Promise<void> => {
      const fingerprints = present.map((p) => p.identity.fingerprint).sort();
      for (const m of present) {
        expect(hex(m.group.members())).toEqual(hex(present.map((p) => p.identity.publicKeyBytes)));
        // What the UI would show for each member of the group: the fingerprints people compare.
        const shown = await Promise.all(m.group.members().map((key) => fingerprintOf(key)));
        expect(shown.sort()).toEqual(fingerprints);
      }
    };
    await check(everyone);
    // Carol's commit carries an update path: her leaf gets a new HPKE key, never a new signature key.
    const { commit } = await carol.group.remove([bob.identity.publicKeyBytes]);
    await applyAll(everyone, commit);
    await check([alice, carol]);
    const dave = await join('dave', alice, [alice, carol]);
    await check([alice, carol, dave]);
    expect(alice.group.epoch).toBe(4n);
  });
});
