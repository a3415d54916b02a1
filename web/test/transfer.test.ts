// File transfer without a network: a sender and a receiver joined by an in-memory channel
// that can reorder, drop, alter and rate-limit chunks.
import { describe, expect, it } from 'vitest';
import type { FileBody, FileCancelBody } from '../src/content';
import { type Bytes, bytesEqual } from '../src/encoding';
import type { Ack, Limits } from '../src/protocol';
import {
  DEFAULT_CHUNK_SIZE, FALLBACK_MAX_FILE_BYTES, IncomingFile, TransferError, chooseChunkSize, maxFileBytes, planFile,
  previewKind, sendFile, type TransferChannel,
} from '../src/transfer';

const LIMITS: Limits = { maxMessageBytes: 65536, maxChunkBytes: 1024 * 1024, maxFileChunks: 1024, maxFileBytes: 256 * 1024 * 1024, maxMembersPerRoom: 100 };

interface Captured { body: FileBody | null; cancels: string[]; chunks: { seq: number; data: Bytes }[] }

function channel(options: { rateLimitFirst?: number } = {}): TransferChannel & Captured {
  let refusals = options.rateLimitFirst ?? 0;
  const captured: Captured = { body: null, cancels: [], chunks: [] };
  return Object.assign(captured, {
    async sendBody(body: FileBody | FileCancelBody) {
      if (body.type === 'file') captured.body = body;
      else captured.cancels.push(body.file);
      return { ok: true as const, ts: 1000 };
    },
    async sendChunk(_file: string, seq: number, data: Bytes): Promise<Ack<null>> {
      if (refusals > 0) {
        refusals--;
        return { ok: false, code: 'rate_limited', message: 'slow down' };
      }
      captured.chunks.push({ seq, data });
      return { ok: true, value: null };
    },
  });
}

function sample(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

/** Large arrays compared as bytes: a deep-equality diff of megabytes is very slow. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  return bytesEqual(a, b);
}

async function receive(body: FileBody, chunks: { seq: number; data: Bytes }[]): Promise<Bytes> {
  const incoming = IncomingFile.start(body, LIMITS);
  if (typeof incoming === 'string') throw new Error(incoming);
  for (const { seq, data } of chunks) await incoming.accept(seq, data);
  return incoming.assemble();
}

const MiB = 1024 * 1024;
const KiB = 1024;
/** The server's defaults: 1 MiB sealed chunks, 256 of them per file. */
const DEFAULTS: Limits = { maxMessageBytes: 65536, maxChunkBytes: MiB, maxFileChunks: 256, maxFileBytes: 256 * MiB, maxMembersPerRoom: 1000 };

describe('planning', () => {
  it('uses 256 KiB chunks for files that fit in that many', () => {
    expect(planFile(600 * KiB, LIMITS)).toMatchObject({ ok: true, chunkSize: DEFAULT_CHUNK_SIZE, chunks: 3 });
    expect(planFile(0, LIMITS)).toMatchObject({ ok: true, chunkSize: DEFAULT_CHUNK_SIZE, chunks: 1 });
    expect(planFile(1, DEFAULTS)).toMatchObject({ ok: true, chunkSize: DEFAULT_CHUNK_SIZE, chunks: 1 });
    expect(planFile(64 * MiB, DEFAULTS)).toMatchObject({ ok: true, chunkSize: DEFAULT_CHUNK_SIZE, chunks: 256 });
  });

  it('grows the chunk size in 64 KiB steps so that large files fit in max_file_chunks', () => {
    // One byte over 64 MiB no longer fits in 256 chunks of 256 KiB: 320 KiB chunks do.
    expect(planFile(64 * MiB + 1, DEFAULTS)).toMatchObject({ ok: true, chunkSize: 320 * KiB, chunks: 205 });
    expect(chooseChunkSize(100 * MiB, DEFAULTS)).toBe(448 * KiB); // ceil(100 MiB / 256) = 400 KiB → 448 KiB
    expect(chooseChunkSize(128 * MiB, DEFAULTS)).toBe(512 * KiB);
    expect(chooseChunkSize(128 * MiB + 1, DEFAULTS)).toBe(576 * KiB);
    // Never above what one sealed chunk holds: max_chunk_bytes − 16 tag bytes.
    expect(chooseChunkSize(255 * MiB, DEFAULTS)).toBe(MiB - 16);
    for (const size of [0, 1, 64 * MiB, 64 * MiB + 1, 100 * MiB + 12345, 200 * MiB, maxFileBytes(DEFAULTS)]) {
      const plan = planFile(size, DEFAULTS);
      if (!plan.ok) throw new Error(`${size} refused`);
      expect(plan.chunkSize).toBeGreaterThanOrEqual(DEFAULT_CHUNK_SIZE);
      expect(plan.chunkSize + 16).toBeLessThanOrEqual(DEFAULTS.maxChunkBytes);
      expect(plan.chunks).toBeLessThanOrEqual(DEFAULTS.maxFileChunks);
      expect(plan.chunks).toBe(Math.max(1, Math.ceil(size / plan.chunkSize)));
      expect(size + 16 * plan.chunks).toBeLessThanOrEqual(DEFAULTS.maxFileBytes);
    }
  });

  it('accepts files up to the server limit in sealed bytes and refuses the next byte', () => {
    // 256 sealed chunks of 1 MiB: 256 MiB of sealed bytes, of which 256 × 16 are tags.
    expect(maxFileBytes(DEFAULTS)).toBe(256 * (MiB - 16));
    expect(planFile(256 * (MiB - 16), DEFAULTS)).toMatchObject({ ok: true, chunkSize: MiB - 16, chunks: 256 });
    expect(planFile(256 * (MiB - 16) + 1, DEFAULTS)).toEqual({ ok: false, reason: 'larger than this server accepts', maxBytes: 256 * (MiB - 16) });
    expect(planFile(256 * MiB, DEFAULTS)).toMatchObject({ ok: false });
  });

  it('uses smaller chunks when the server only relays smaller ones', () => {
    const small = { ...LIMITS, maxChunkBytes: 1040, maxFileChunks: 10, maxFileBytes: 10400 };
    expect(maxFileBytes(small)).toBe(10240);
    expect(planFile(5000, small)).toMatchObject({ ok: true, chunkSize: 1024, chunks: 5 });
    expect(planFile(10240, small)).toMatchObject({ ok: true, chunkSize: 1024, chunks: 10 });
    expect(planFile(10241, small)).toMatchObject({ ok: false, maxBytes: 10240 });
    // The browser test's server: 2 chunks of 64 KiB sealed.
    const tiny = { ...LIMITS, maxChunkBytes: 65536, maxFileChunks: 2, maxFileBytes: 131072 };
    expect(planFile(131040, tiny)).toMatchObject({ ok: true, chunkSize: 65520, chunks: 2 });
    expect(planFile(200_000, tiny)).toMatchObject({ ok: false, maxBytes: 131040 });
  });

  it('stays within a sealed byte budget announced below chunks × chunk size', () => {
    const budget = { ...DEFAULTS, maxFileBytes: 10 * MiB };
    expect(maxFileBytes(budget)).toBe(10 * MiB - 16 * 256);
    expect(planFile(10 * MiB - 16 * 256, budget)).toMatchObject({ ok: true });
    expect(planFile(10 * MiB, budget)).toMatchObject({ ok: false });
  });

  it('refuses everything when not even one byte fits in a chunk', () => {
    expect(planFile(0, { ...DEFAULTS, maxChunkBytes: 16 })).toMatchObject({ ok: false, maxBytes: 0 });
    expect(planFile(1, { ...DEFAULTS, maxFileChunks: 0 })).toMatchObject({ ok: false, maxBytes: 0 });
  });

  it('assumes 64 MiB in 256 KiB chunks from a server that announces no limits', () => {
    expect(maxFileBytes(null)).toBe(FALLBACK_MAX_FILE_BYTES);
    expect(planFile(FALLBACK_MAX_FILE_BYTES, null)).toMatchObject({ ok: true, chunkSize: DEFAULT_CHUNK_SIZE, chunks: 256 });
    expect(planFile(FALLBACK_MAX_FILE_BYTES + 1, null)).toMatchObject({ ok: false, maxBytes: FALLBACK_MAX_FILE_BYTES });
  });

  it('shows only safe media types inline', () => {
    expect(previewKind('image/png')).toBe('image');
    expect(previewKind('video/webm')).toBe('video');
    expect(previewKind('audio/ogg')).toBe('audio');
    expect(previewKind('image/svg+xml')).toBeNull();
    expect(previewKind('text/html')).toBeNull();
  });
});

describe('sending and receiving', () => {
  it('round-trips a file of several chunks, reporting progress', async () => {
    const plaintext = sample(DEFAULT_CHUNK_SIZE * 2 + 1234);
    const link = channel();
    const progress: number[] = [];
    const result = await sendFile(new Blob([plaintext]), { name: 'a.bin', mime: 'application/octet-stream' }, LIMITS, link,
      new AbortController().signal, { progress: (sent) => progress.push(sent) });
    expect(result).toEqual({ ok: true });
    expect(link.body).toMatchObject({ type: 'file', size: plaintext.length, chunks: 3, chunkSize: DEFAULT_CHUNK_SIZE });
    expect(link.body?.id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(progress).toEqual([1, 2, 3]);
    expect(link.chunks.map((c) => c.seq)).toEqual([0, 1, 2]);
    if (link.body === null) throw new Error('no announcement');
    expect(same(await receive(link.body, link.chunks), plaintext)).toBe(true);
    // Order of arrival does not matter.
    expect(same(await receive(link.body, [...link.chunks].reverse()), plaintext)).toBe(true);
  });

  it('sends a file in larger chunks when the server takes few chunks per file, and receives it', async () => {
    const fewChunks = { ...LIMITS, maxFileChunks: 2, maxFileBytes: 2 * LIMITS.maxChunkBytes };
    const plaintext = sample(600 * 1024 + 5);
    const link = channel();
    expect(await sendFile(new Blob([plaintext]), { name: 'a.bin', mime: 'application/octet-stream' }, fewChunks, link,
      new AbortController().signal)).toEqual({ ok: true });
    expect(link.body).toMatchObject({ chunkSize: 320 * 1024, chunks: 2 });
    expect(link.chunks.map((c) => c.data.length)).toEqual([320 * 1024 + 16, 600 * 1024 + 5 - 320 * 1024 + 16]);
    if (link.body === null) throw new Error('no announcement');
    // A receiver takes whatever chunk size the sender announced (within the server's limits).
    const incoming = IncomingFile.start(link.body, fewChunks);
    if (typeof incoming === 'string') throw new Error(incoming);
    for (const { seq, data } of link.chunks) await incoming.accept(seq, data);
    expect(same(await incoming.assemble(), plaintext)).toBe(true);
  });

  it('hands out decrypted chunks in order from the start, each once, for playing while receiving', async () => {
    const plaintext = sample(3000);
    const link = channel();
    const tiny = { ...LIMITS, maxChunkBytes: 1040 };
    await sendFile(new Blob([plaintext]), { name: 'x', mime: 'x/y' }, tiny, link, new AbortController().signal);
    if (link.body === null) throw new Error('no announcement');
    const incoming = IncomingFile.start(link.body, tiny);
    if (typeof incoming === 'string') throw new Error(incoming);
    const [c0, c1, c2] = link.chunks;
    if (c0 === undefined || c1 === undefined || c2 === undefined) throw new Error('expected 3 chunks');
    await incoming.accept(1, c1.data);
    expect(incoming.takeInOrder()).toEqual([]);
    await incoming.accept(0, c0.data);
    expect(incoming.takeInOrder()).toEqual([plaintext.subarray(0, 1024), plaintext.subarray(1024, 2048)]);
    expect(incoming.takeInOrder()).toEqual([]);
    await incoming.accept(2, c2.data);
    expect(incoming.takeInOrder()).toEqual([plaintext.subarray(2048)]);
    expect(same(await incoming.assemble(), plaintext)).toBe(true);
  });

  it('hands out nothing more once a chunk failed', async () => {
    const link = channel();
    const tiny = { ...LIMITS, maxChunkBytes: 1040 };
    await sendFile(new Blob([sample(3000)]), { name: 'x', mime: 'x/y' }, tiny, link, new AbortController().signal);
    if (link.body === null) throw new Error('no announcement');
    const incoming = IncomingFile.start(link.body, tiny);
    if (typeof incoming === 'string') throw new Error(incoming);
    const [c0, c1] = link.chunks;
    if (c0 === undefined || c1 === undefined) throw new Error('expected chunks');
    await incoming.accept(0, c0.data);
    const altered = c1.data.slice();
    altered[0] = (altered[0] ?? 0) ^ 1;
    await expect(incoming.accept(1, altered)).rejects.toThrow();
    expect(incoming.takeInOrder()).toEqual([]);
  });

  it('sends an empty file as one chunk', async () => {
    const link = channel();
    expect(await sendFile(new Blob([]), { name: 'empty', mime: 'text/plain' }, LIMITS, link, new AbortController().signal)).toEqual({ ok: true });
    expect(link.chunks).toHaveLength(1);
    if (link.body === null) throw new Error('no announcement');
    expect(await receive(link.body, link.chunks)).toEqual(new Uint8Array(0));
  });

  it('waits and retries when the server rate-limits chunks', async () => {
    const link = channel({ rateLimitFirst: 2 });
    const plaintext = sample(5000);
    expect(await sendFile(new Blob([plaintext]), { name: 'x', mime: 'x/y' }, LIMITS, link, new AbortController().signal)).toEqual({ ok: true });
    if (link.body === null) throw new Error('no announcement');
    expect(await receive(link.body, link.chunks)).toEqual(plaintext);
  });

  it('stops when cancelled', async () => {
    const link = channel();
    const abort = new AbortController();
    const result = await sendFile(new Blob([sample(DEFAULT_CHUNK_SIZE * 10)]), { name: 'x', mime: 'x/y' }, LIMITS, link, abort.signal, {
      progress: (sent) => { if (sent === 2) abort.abort(); },
    });
    expect(result).toMatchObject({ ok: false, cancelled: true });
    expect(link.chunks.length).toBeLessThan(10);
    // The others are told, once, with the id of the file they were announced.
    expect(link.cancels).toEqual([link.body?.id]);
  });

  it('cancels at once while a chunk waits out a rate limit, and retries the cancel notice', async () => {
    const link = channel({ rateLimitFirst: 1000 });
    let cancelRefusals = 2;
    const sendBody = link.sendBody.bind(link);
    link.sendBody = async (body) => {
      if (body.type === 'file-cancel' && cancelRefusals-- > 0) return { ok: false, code: 'rate_limited', message: 'slow down' };
      return sendBody(body);
    };
    const abort = new AbortController();
    const started = Date.now();
    const sending = sendFile(new Blob([sample(DEFAULT_CHUNK_SIZE * 6)]), { name: 'x', mime: 'x/y' }, LIMITS, link, abort.signal, {
      announced: () => { setTimeout(() => abort.abort(), 300); },
    });
    expect(await sending).toMatchObject({ ok: false, cancelled: true });
    // Back-offs of 250 ms, 500 ms, … are cut short by the cancel; the notice's own retries are 250 + 500 ms.
    expect(Date.now() - started).toBeLessThan(3000);
    expect(link.chunks).toHaveLength(0);
    expect(link.cancels).toEqual([link.body?.id]);
  });

  it('sends no cancel notice for a file that was never announced or that completed', async () => {
    const before = channel();
    const abort = new AbortController();
    abort.abort();
    expect(await sendFile(new Blob([sample(10)]), { name: 'x', mime: 'x/y' }, LIMITS, before, abort.signal)).toMatchObject({ cancelled: true });
    expect(before.body).toBeNull();
    expect(before.cancels).toEqual([]);
    const complete = channel();
    expect(await sendFile(new Blob([sample(10)]), { name: 'x', mime: 'x/y' }, LIMITS, complete, new AbortController().signal)).toEqual({ ok: true });
    expect(complete.cancels).toEqual([]);
  });

  it('keeps nothing of a released transfer, nor of chunks after it', async () => {
    const link = channel();
    const tiny = { ...LIMITS, maxChunkBytes: 1016 };
    await sendFile(new Blob([sample(3000)]), { name: 'x', mime: 'x/y' }, tiny, link, new AbortController().signal);
    if (link.body === null) throw new Error('no announcement');
    const incoming = IncomingFile.start(link.body, tiny);
    if (typeof incoming === 'string') throw new Error(incoming);
    const [first, second] = link.chunks;
    if (first === undefined || second === undefined) throw new Error('too few chunks');
    expect(await incoming.accept(first.seq, first.data)).toBe(true);
    incoming.release();
    expect(incoming.takeInOrder()).toEqual([]);
    expect(await incoming.accept(second.seq, second.data)).toBe(false);
    expect(incoming.complete).toBe(false);
  });

  it('refuses a file larger than the server accepts, before announcing it', async () => {
    const link = channel();
    const tiny = { ...LIMITS, maxChunkBytes: 116, maxFileChunks: 2 };
    expect(await sendFile(new Blob([sample(201)]), { name: 'x', mime: 'x/y' }, tiny, link, new AbortController().signal)).toMatchObject({ ok: false, cancelled: false });
    expect(link.body).toBeNull();
  });

  it('detects altered, swapped, extra and oversized chunks, and a wrong checksum', async () => {
    const plaintext = sample(3000);
    const link = channel();
    const tiny = { ...LIMITS, maxChunkBytes: 1040 };
    await sendFile(new Blob([plaintext]), { name: 'x', mime: 'x/y' }, tiny, link, new AbortController().signal);
    const body = link.body;
    if (body === null) throw new Error('no announcement');
    const [c0, c1, c2] = link.chunks;
    if (c0 === undefined || c1 === undefined || c2 === undefined) throw new Error('expected 3 chunks');

    const altered = c1.data.slice();
    altered[5] = (altered[5] ?? 0) ^ 1;
    await expect(receive(body, [c0, { seq: 1, data: altered }, c2])).rejects.toThrow();
    await expect(receive(body, [{ seq: 0, data: c1.data }])).rejects.toThrow();
    await expect(receive(body, [{ seq: 3, data: c2.data }])).rejects.toBeInstanceOf(TransferError);
    await expect(receive(body, [{ seq: 0, data: new Uint8Array(2000) }])).rejects.toBeInstanceOf(TransferError);
    await expect(receive({ ...body, sha256: body.key }, link.chunks)).rejects.toBeInstanceOf(TransferError);
    // Truncation: without the last chunk the file never completes.
    const incoming = IncomingFile.start(body, tiny);
    if (typeof incoming === 'string') throw new Error(incoming);
    await incoming.accept(0, c0.data);
    await incoming.accept(1, c1.data);
    expect(incoming.complete).toBe(false);
    await expect(incoming.assemble()).rejects.toBeInstanceOf(TransferError);
  });
});
