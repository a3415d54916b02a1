// File transfer without a network: a sender and a receiver joined by an in-memory channel
// that can reorder, drop, alter and rate-limit chunks.
import { describe, expect, it } from 'vitest';
import type { FileBody } from '../src/content';
import { type Bytes, bytesEqual } from '../src/encoding';
import type { Ack, Limits } from '../src/protocol';
import {
  DEFAULT_CHUNK_SIZE, IncomingFile, TransferError, maxFileBytes, planFile, previewKind, sendFile,
  type TransferChannel,
} from '../src/transfer';

const LIMITS: Limits = { maxMessageBytes: 65536, maxChunkBytes: 1024 * 1024, maxFileChunks: 1024, maxFileBytes: 256 * 1024 * 1024, maxMembersPerRoom: 100 };

interface Captured { body: FileBody | null; chunks: { seq: number; data: Bytes }[] }

function channel(options: { rateLimitFirst?: number } = {}): TransferChannel & Captured {
  let refusals = options.rateLimitFirst ?? 0;
  const captured: Captured = { body: null, chunks: [] };
  return Object.assign(captured, {
    async sendBody(body: FileBody) {
      captured.body = body;
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

describe('planning', () => {
  it('uses 256 KiB chunks within the server limits', () => {
    expect(maxFileBytes(LIMITS)).toEqual({ chunkSize: DEFAULT_CHUNK_SIZE, maxBytes: 256 * 1024 * 1024 });
    expect(planFile(600 * 1024, LIMITS)).toMatchObject({ ok: true, chunkSize: DEFAULT_CHUNK_SIZE, chunks: 3 });
    expect(planFile(0, LIMITS)).toMatchObject({ ok: true, chunks: 1 });
    const small = { ...LIMITS, maxChunkBytes: 1040, maxFileChunks: 10 };
    expect(maxFileBytes(small)).toEqual({ chunkSize: 1024, maxBytes: 10240 });
    expect(planFile(10241, small)).toMatchObject({ ok: false });
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
