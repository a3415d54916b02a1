// web_sealed: opening what others sealed, as the web client does (src/crypto.ts):
// openEnvelope, verifyEnvelope and open on sealed payloads attributed to a member, and
// decryptChunk on file chunks, with the keys of testdata/crypto-vectors.json. The server
// relays them and may alter, move or re-attribute anything.
import fc from 'fast-check';
import { expect, it } from 'vitest';
import {
  type Identity, OpenError, type RoomKeys, decryptChunk, deriveRoomKeys, encryptChunk, identityFromSeed, importFileKey,
  open, openEnvelope, seal, verifyEnvelope,
} from '../src/crypto';
import { decodeBody } from '../src/content';
import { bytesEqual } from '../src/encoding';
import { b64, loadVectors } from '../test/vectors';
import { TEST_TIMEOUT_MS, bytesFrom, fuzz, type Outcomes } from './harness';

const vectors = loadVectors();
if (vectors === null) throw new Error('web_sealed needs testdata/crypto-vectors.json');

interface Context { readonly secret: string; readonly member: string; readonly room: RoomKeys; readonly identity: Identity }
interface FileContext { readonly key: CryptoKey; readonly prefix: Uint8Array }

let contexts: Context[] = [];
let files: FileContext[] = [];

async function setUp(): Promise<void> {
  const seen = new Map<string, Context>();
  for (const v of vectors?.sealed ?? []) {
    const id = `${v.secret} ${v.member} ${v.seed}`;
    if (!seen.has(id)) {
      seen.set(id, { secret: v.secret, member: v.member, room: await deriveRoomKeys(b64(v.secret)), identity: await identityFromSeed(b64(v.seed)) });
    }
  }
  contexts = [...seen.values()];
  files = await Promise.all((vectors?.files ?? []).map(async (f) => ({ key: await importFileKey(b64(f.file_key)), prefix: b64(f.nonce_prefix) })));
}

function contextOf(secret: string, member: string): number {
  return contexts.findIndex((c) => c.secret === secret && c.member === member);
}

/** Only OpenError may come out of opening; anything else is a bug. */
async function kind(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (e: unknown) {
    if (e instanceof OpenError) return e.kind;
    throw e;
  }
}

async function runSealed(ctxIndex: number, sealed: Uint8Array, outcomes: Outcomes): Promise<void> {
  const ctx = contexts[ctxIndex % contexts.length];
  if (ctx === undefined) return;
  const bytes = Uint8Array.from(sealed);
  let envelope;
  try {
    envelope = await openEnvelope(ctx.room, ctx.member, bytes);
  } catch (e: unknown) {
    if (!(e instanceof OpenError)) throw e;
    expect(await kind(open(ctx.room, ctx.member, ctx.identity.publicKey, bytes))).toBe(e.kind);
    outcomes.hit(`open:${e.kind}`);
    return;
  }
  outcomes.hit('open:ok');
  // Bound to its room and its member: nobody else opens it.
  for (const other of contexts) {
    if (other.room.roomId !== ctx.room.roomId || other.member !== ctx.member) {
      expect(await kind(openEnvelope(other.room, other.member, bytes))).toBe('decrypt');
    }
  }
  const verified = await kind(verifyEnvelope(ctx.identity.publicKey, ctx.room, ctx.member, envelope));
  expect(await kind(open(ctx.room, ctx.member, ctx.identity.publicKey, bytes))).toBe(verified);
  if (verified === 'ok') {
    // What verifies is exactly what the sender sealed, with the iv it chose.
    const again = await seal(ctx.room, ctx.identity, ctx.member, envelope.body, bytes.slice(1, 13));
    expect(bytesEqual(again, bytes)).toBe(true);
    outcomes.hit(decodeBody(envelope.body) === null ? 'verified:malformed' : 'verified:body');
  } else {
    outcomes.hit(`verify:${verified}`);
  }
}

async function runChunk(fileIndex: number, index: number, last: boolean, chunk: Uint8Array, outcomes: Outcomes): Promise<void> {
  const file = files[fileIndex % files.length];
  if (file === undefined) return;
  let plaintext;
  try {
    plaintext = await decryptChunk(file.key, file.prefix, index, last, Uint8Array.from(chunk));
  } catch (e: unknown) {
    if (!(e instanceof OpenError)) throw e;
    outcomes.hit('chunk:refused');
    return;
  }
  // An accepted chunk is the one sealed at this index with this finality.
  expect(bytesEqual(await encryptChunk(file.key, file.prefix, index, last, plaintext), chunk)).toBe(true);
  outcomes.hit('chunk:ok');
}

it('web_sealed', async () => {
  await setUp();
  const sealedSeeds = [...(vectors?.sealed ?? []), ...(vectors?.invalid ?? [])].map((v) => ({ ctx: contextOf(v.secret, v.member), bytes: b64(v.sealed) }));
  const chunkSeeds = (vectors?.files ?? []).flatMap((f, fileIndex) => f.chunks.map((c, index) => ({ fileIndex, index, last: index === f.chunks.length - 1, bytes: b64(c) })));
  const sealedInput = fc.tuple(fc.nat({ max: sealedSeeds.length - 1 }), fc.nat({ max: 7 }), bytesFrom(sealedSeeds.map((s) => s.bytes)))
    .map(([seed, move, bytes]) => {
      const ctx = Math.max(0, sealedSeeds[seed]?.ctx ?? 0);
      // Mostly the context of a seed; sometimes another one (a payload moved or re-attributed).
      return { kind: 'sealed' as const, ctx: move === 0 ? ctx + 1 + seed : ctx, bytes };
    });
  const chunkInput = fc.tuple(fc.nat({ max: chunkSeeds.length - 1 }), fc.nat({ max: 7 }), fc.integer({ min: -2, max: 2 }), bytesFrom(chunkSeeds.map((s) => s.bytes)))
    .map(([seed, flag, shift, bytes]) => {
      const s = chunkSeeds[seed] ?? { fileIndex: 0, index: 0, last: false };
      return { kind: 'chunk' as const, file: s.fileIndex, index: Math.max(0, s.index + (flag === 0 ? shift : 0)), last: flag === 1 ? !s.last : s.last, bytes };
    });
  await fuzz({
    name: 'web_sealed',
    input: fc.oneof({ weight: 3, arbitrary: sealedInput }, { weight: 1, arbitrary: chunkInput }),
    run: (i, outcomes) => (i.kind === 'sealed' ? runSealed(i.ctx, i.bytes, outcomes) : runChunk(i.file, i.index, i.last, i.bytes, outcomes)),
    mustReach: ['open:ok', 'open:format', 'open:decrypt', 'verified:body', 'verify:signature', 'chunk:ok', 'chunk:refused'],
  });
}, TEST_TIMEOUT_MS);
