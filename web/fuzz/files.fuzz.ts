// web_files: a file arriving from another member, as the web client receives it:
// IncomingFile (src/transfer.ts) takes the announced file's chunks in any order, any
// number of times, altered or not, and hands over the whole only if it is complete and
// its SHA-256 is the announced one; and webmCodecs (src/webm.ts), which reads the first
// bytes of a video while it arrives to decide whether it can play before it is whole.
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { FileBody } from '../src/content';
import { OpenError, sha256 } from '../src/crypto';
import { bytesEqual, toBase64Url } from '../src/encoding';
import { IncomingFile, TransferError } from '../src/transfer';
import { webmCodecs } from '../src/webm';
import { b64, loadVectors } from '../test/vectors';
import { TEST_TIMEOUT_MS, bytesFrom, fuzz, type Outcomes } from './harness';

const vectors = loadVectors();
if (vectors === null) throw new Error('web_files needs testdata/crypto-vectors.json');

const LIMITS = { maxMessageBytes: 65536, maxChunkBytes: 1048576, maxFileChunks: 256, maxFileBytes: 268435456, maxMembersPerRoom: 1000 };

interface File { readonly body: FileBody; readonly plaintext: Uint8Array; readonly chunks: Uint8Array[] }

const FILES: File[] = vectors.files.map((f, i) => {
  const plaintext = b64(f.plaintext);
  return {
    plaintext,
    chunks: f.chunks.map(b64),
    body: {
      type: 'file', id: `fileVector${String(i).padStart(6, '0')}`, name: f.name, mime: 'application/octet-stream',
      size: plaintext.length, chunkSize: f.chunk_size, chunks: f.chunks.length, sha256: f.sha256, key: f.file_key,
      noncePrefix: f.nonce_prefix, sentAt: 1,
    },
  };
});
const ALL_CHUNKS = FILES.flatMap((f) => f.chunks);

// ---- WebM seeds (as test/webm.test.ts builds them) ----
function el(id: number[], ...data: number[][]): number[] {
  const body = data.flat();
  const size = [0x01, 0, 0, 0, (body.length >>> 24) & 0xff, (body.length >>> 16) & 0xff, (body.length >>> 8) & 0xff, body.length & 0xff];
  return [...id, ...size, ...body];
}
const ascii = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0));
const header = el([0x1a, 0x45, 0xdf, 0xa3], el([0x42, 0x86], [1]), el([0x42, 0x82], ascii('webm')));
const tracks = (...codecs: string[]): number[] => el([0x16, 0x54, 0xae, 0x6b], ...codecs.map((c) => el([0xae], el([0xd7], [1]), el([0x86], ascii(c)))));
const info = el([0x15, 0x49, 0xa9, 0x66], el([0x2a, 0xd7, 0xb1], [0x0f, 0x42, 0x40]));
const cluster = el([0x1f, 0x43, 0xb6, 0x75], el([0xe7], [0]), el([0xa3], Array.from({ length: 40 }, () => 0)));
const WEBM = [
  [...header, ...el([0x18, 0x53, 0x80, 0x67], info, tracks('V_VP8'), cluster)],
  [...header, ...el([0x18, 0x53, 0x80, 0x67], info, tracks('V_VP9', 'A_OPUS'), cluster)],
  [...header, 0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...info, ...tracks('V_VP8', 'A_VORBIS')],
  [...header, ...el([0x18, 0x53, 0x80, 0x67], cluster, tracks('V_VP8'))],
].map((b) => new Uint8Array(b));
const CODECS = new Set(['vp8', 'vp9', 'opus', 'vorbis']);

// ---- Chunk sequences ----
interface Chunk { readonly seq: number; readonly data: Uint8Array }

const inOrder = fc.nat({ max: FILES.length - 1 }).map((file) => ({ file, chunks: (FILES[file]?.chunks ?? []).map((data, seq) => ({ seq, data })) }));
const anyOrder = fc.tuple(
  fc.nat({ max: FILES.length - 1 }),
  fc.array(fc.record({
    pick: fc.nat(),
    seqShift: fc.constantFrom(0, 0, 0, 0, 0, 1, -1, 2 ** 31, 2 ** 32 - 1),
    replace: fc.option(bytesFrom(ALL_CHUNKS), { freq: 4 }),
  }), { maxLength: 12 }),
).map(([file, records]) => {
  const chunks = FILES[file]?.chunks ?? [];
  return {
    file,
    chunks: records.map((r): Chunk => {
      const i = r.pick % Math.max(1, chunks.length);
      return { seq: Math.max(0, i + r.seqShift), data: r.replace ?? chunks[i] ?? new Uint8Array() };
    }),
  };
});

async function runFile(fileIndex: number, chunks: readonly Chunk[], outcomes: Outcomes): Promise<void> {
  const file = FILES[fileIndex];
  if (file === undefined) return;
  const incoming = IncomingFile.start(file.body, LIMITS);
  if (typeof incoming === 'string') throw new Error(`a vector file was refused: ${incoming}`);
  let failed = false;
  let streamed = 0;
  for (const { seq, data } of chunks) {
    const before = incoming.received;
    let fresh: boolean;
    try {
      fresh = await incoming.accept(seq, Uint8Array.from(data));
    } catch (e: unknown) {
      if (!(e instanceof TransferError || e instanceof OpenError)) throw e;
      failed = true;
      outcomes.hit(e instanceof OpenError ? 'chunk:altered' : 'chunk:refused');
      continue;
    }
    if (failed) expect(fresh, 'a failed transfer takes nothing more').toBe(false);
    expect(incoming.received).toBe(before + (fresh ? 1 : 0));
    if (fresh) {
      // Only the chunk sealed at this index opens there, and it holds that part of the file.
      expect(bytesEqual(data, file.chunks[seq] ?? new Uint8Array())).toBe(true);
      outcomes.hit('chunk:taken');
    }
    for (const part of incoming.takeInOrder()) {
      expect(bytesEqual(part, file.plaintext.subarray(streamed, streamed + part.length)), 'streamed in order').toBe(true);
      streamed += part.length;
    }
  }
  if (incoming.complete) {
    const whole = await incoming.assemble();
    expect(bytesEqual(whole, file.plaintext)).toBe(true);
    expect(toBase64Url(await sha256(whole))).toBe(file.body.sha256);
    outcomes.hit('file:whole');
  }
}

function runWebm(bytes: Uint8Array, outcomes: Outcomes): void {
  const codecs = webmCodecs(bytes);
  if (codecs !== null) {
    const list = codecs.split(',');
    expect(list.length).toBeGreaterThan(0);
    for (const c of list) expect(CODECS.has(c)).toBe(true);
    expect(new Set(list).size).toBe(list.length);
    outcomes.hit('webm:codecs');
  } else {
    outcomes.hit('webm:unknown');
  }
}

it('web_files', async () => {
  const input = fc.oneof(
    { weight: 1, arbitrary: inOrder.map((i) => ({ kind: 'file' as const, ...i })) },
    { weight: 4, arbitrary: anyOrder.map((i) => ({ kind: 'file' as const, ...i })) },
    { weight: 3, arbitrary: bytesFrom(WEBM).map((bytes) => ({ kind: 'webm' as const, bytes })) },
  );
  await fuzz({
    name: 'web_files',
    input,
    run: (i, outcomes) => (i.kind === 'file' ? runFile(i.file, i.chunks, outcomes) : runWebm(i.bytes, outcomes)),
    mustReach: ['chunk:taken', 'chunk:altered', 'chunk:refused', 'file:whole', 'webm:codecs', 'webm:unknown'],
  });
}, TEST_TIMEOUT_MS);
