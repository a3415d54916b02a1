//! Encrypted file transfer, without DOM: planning a file against the server's limits,
//! sending it (the sealed `file` body first, then STREAM-encrypted chunks paced by the
//! server's acks with a small window; a sealed `file-cancel` if it is cancelled after
//! being announced), and receiving it (decrypting chunks as they come,
//! then checking the SHA-256 of the whole). Everything stays in memory; nothing is
//! written anywhere unless the person saves the result.

import type { FileBody, FileCancelBody } from './content';
import {
  FILE_KEY_BYTES, OpenError, chunkCount, decryptChunk, encryptChunk, importFileKey, newFileSecrets,
  randomBytes, sha256,
} from './crypto';
import { type Bytes, bytesEqual, fromBase64Url, toBase64Url } from './encoding';
import type { Ack, ErrorAck, Limits } from './protocol';

/**
 * Smallest plaintext chunk (the default of docs/crypto.md §9). Larger files get larger chunks so that
 * they fit in the server's chunk count, up to what one sealed chunk may hold.
 */
export const DEFAULT_CHUNK_SIZE = 256 * 1024;
/** Chunk sizes above the default are rounded up to a multiple of this. */
export const CHUNK_SIZE_STEP = 64 * 1024;
export const GCM_TAG_BYTES = 16;
/** Chunks in flight before waiting for the server's acks: enough to keep the pipe busy, small enough to stay responsive. */
export const SEND_WINDOW = 4;
const RATE_LIMIT_RETRIES = 6;
/** Tries to tell the others that a file was cancelled (the byte bucket may be empty just then). */
const CANCEL_NOTICE_TRIES = 8;
/** When a server does not announce limits (a plain v1 server), assume no more than this. */
export const FALLBACK_MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Chunks per file assumed for a server that does not announce limits (64 MiB in 256 KiB chunks). */
const FALLBACK_MAX_FILE_CHUNKS = FALLBACK_MAX_FILE_BYTES / DEFAULT_CHUNK_SIZE;

export type Plan =
  | { readonly ok: true; readonly chunkSize: number; readonly chunks: number; readonly maxBytes: number }
  | { readonly ok: false; readonly reason: string; readonly maxBytes: number };

/** What these limits allow per chunk (plaintext) and per file (chunk count and sealed bytes). */
function bounds(limits: Limits | null): { largestChunk: number; maxChunks: number; maxSealedBytes: number } {
  if (limits === null) {
    return { largestChunk: DEFAULT_CHUNK_SIZE, maxChunks: FALLBACK_MAX_FILE_CHUNKS, maxSealedBytes: Number.MAX_SAFE_INTEGER };
  }
  // A sealed chunk is its plaintext plus the GCM tag: max_chunk_bytes counts sealed bytes.
  return { largestChunk: Math.max(0, limits.maxChunkBytes - GCM_TAG_BYTES), maxChunks: limits.maxFileChunks, maxSealedBytes: limits.maxFileBytes };
}

/**
 * The largest file (plaintext bytes) these limits allow: as many chunks as the server
 * takes, each as large as a sealed chunk may be, within the sealed bytes per file.
 */
export function maxFileBytes(limits: Limits | null): number {
  const { largestChunk, maxChunks, maxSealedBytes } = bounds(limits);
  if (largestChunk === 0 || maxChunks === 0) return 0;
  return Math.max(0, Math.min(largestChunk * maxChunks, maxSealedBytes - GCM_TAG_BYTES * maxChunks));
}

/**
 * The plaintext chunk size for a file of `size` bytes: at least 256 KiB, at least
 * ceil(size / max_file_chunks) rounded up to a multiple of 64 KiB, at most
 * max_chunk_bytes − 16. (Smaller than 256 KiB only when the server's chunks are.)
 */
export function chooseChunkSize(size: number, limits: Limits | null): number {
  const { largestChunk, maxChunks } = bounds(limits);
  const needed = maxChunks > 0 ? Math.ceil(size / maxChunks) : size;
  const wanted = Math.max(DEFAULT_CHUNK_SIZE, Math.ceil(needed / CHUNK_SIZE_STEP) * CHUNK_SIZE_STEP);
  return Math.max(1, Math.min(wanted, largestChunk));
}

/** Decides whether a file of `size` bytes can be sent, and how. */
export function planFile(size: number, limits: Limits | null): Plan {
  const maxBytes = maxFileBytes(limits);
  const { largestChunk, maxChunks, maxSealedBytes } = bounds(limits);
  const chunkSize = chooseChunkSize(size, limits);
  const chunks = chunkCount(size, chunkSize);
  const sealedBytes = size + GCM_TAG_BYTES * chunks;
  if (largestChunk === 0 || chunks > maxChunks || sealedBytes > maxSealedBytes || size > maxBytes) {
    return { ok: false, reason: 'larger than this server accepts', maxBytes };
  }
  return { ok: true, chunkSize, chunks, maxBytes };
}

/** What sending needs from the room: seal-and-send a body, send a chunk. */
export interface TransferChannel {
  sendBody(body: FileBody | FileCancelBody): Promise<{ ok: true; ts: number } | ErrorAck>;
  sendChunk(file: string, seq: number, data: Bytes): Promise<Ack<null>>;
}

export interface SendCallbacks {
  /** The announcement was accepted (server time). */
  announced?(ts: number): void;
  /** `sent` of `total` chunks acknowledged by the server. */
  progress?(sent: number, total: number): void;
}

export type SendResult = { readonly ok: true } | { readonly ok: false; readonly reason: string; readonly cancelled: boolean };

export function newFileId(): string {
  return toBase64Url(randomBytes(12));
}

/**
 * Sends `file`: reads it, hashes it, announces it sealed, then sends every chunk. The
 * whole plaintext is read once because the SHA-256 goes into the announcement, which
 * precedes the chunks (WebCrypto has no streaming digest); each chunk is encrypted only
 * when it is about to be sent.
 */
export async function sendFile(
  file: Blob,
  meta: { readonly name: string; readonly mime: string; readonly id?: string },
  limits: Limits | null,
  channel: TransferChannel,
  signal: AbortSignal,
  callbacks: SendCallbacks = {},
): Promise<SendResult> {
  const plan = planFile(file.size, limits);
  if (!plan.ok) return { ok: false, reason: plan.reason, cancelled: false };
  const plaintext = new Uint8Array(await file.arrayBuffer());
  if (signal.aborted) return cancelled();
  const { fileKey, noncePrefix } = newFileSecrets();
  const key = await importFileKey(fileKey);
  const body: FileBody = {
    type: 'file',
    id: meta.id ?? newFileId(),
    name: meta.name,
    mime: meta.mime,
    size: plaintext.length,
    chunkSize: plan.chunkSize,
    chunks: plan.chunks,
    sha256: toBase64Url(await sha256(plaintext)),
    key: toBase64Url(fileKey),
    noncePrefix: toBase64Url(noncePrefix),
    sentAt: Date.now(),
  };
  fileKey.fill(0);
  const announced = await channel.sendBody(body);
  if (!announced.ok) return { ok: false, reason: announced.message, cancelled: false };
  callbacks.announced?.(announced.ts);

  let acknowledged = 0;
  let failure: string | null = null;
  const inflight = new Set<Promise<void>>();
  for (let seq = 0; seq < plan.chunks && failure === null; seq++) {
    if (signal.aborted) break;
    const last = seq === plan.chunks - 1;
    const slice = plaintext.subarray(seq * plan.chunkSize, (seq + 1) * plan.chunkSize);
    const data = await encryptChunk(key, noncePrefix, seq, last, slice);
    const sending = sendChunkWithRetry(channel, body.id, seq, data, signal).then((ack) => {
      if (ack.ok) {
        acknowledged++;
        callbacks.progress?.(acknowledged, plan.chunks);
      } else {
        failure ??= ack.message;
      }
    });
    inflight.add(sending);
    void sending.finally(() => inflight.delete(sending));
    if (inflight.size >= SEND_WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  if (signal.aborted && acknowledged < plan.chunks) {
    // The others were told a file is coming: tell them it is not, so they stop waiting for it.
    await sendCancel(channel, body.id);
    return cancelled();
  }
  if (failure !== null) return { ok: false, reason: failure, cancelled: false };
  return { ok: true };
}

function cancelled(): SendResult {
  return { ok: false, reason: 'cancelled', cancelled: true };
}

/**
 * Sends the sealed `file-cancel` for an announced file, trying again while the server
 * rate-limits (best effort: offline or refused, receivers fall back to their stall timeout).
 */
async function sendCancel(channel: TransferChannel, file: string): Promise<void> {
  for (let attempt = 0; attempt < CANCEL_NOTICE_TRIES; attempt++) {
    const ack = await channel.sendBody({ type: 'file-cancel', file, sentAt: Date.now() });
    if (ack.ok || (ack.code !== 'rate_limited' && ack.code !== 'unavailable')) return;
    await sleep(Math.min(ack.retryMs ?? 250 * 2 ** attempt, 4000));
  }
}

async function sendChunkWithRetry(channel: TransferChannel, file: string, seq: number, data: Bytes, signal: AbortSignal): Promise<Ack<null>> {
  for (let attempt = 0; ; attempt++) {
    const ack = await channel.sendChunk(file, seq, data);
    // The byte bucket refills: wait and try again rather than failing the whole file.
    if (ack.ok || ack.code !== 'rate_limited' || attempt >= RATE_LIMIT_RETRIES || signal.aborted) return ack;
    await sleep(250 * 2 ** attempt, signal);
    if (signal.aborted) return ack;
  }
}

/** Waits `ms`, or less if `signal` is aborted meanwhile (a cancel is not held up by a back-off). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

// ---- Receiving ------------------------------------------------------------------------------

export class TransferError extends Error {
  override readonly name = 'TransferError';
}

/** A file being received: chunks are decrypted as they arrive and kept in memory. */
export class IncomingFile {
  readonly body: FileBody;
  readonly #parts: (Bytes | undefined)[];
  readonly #noncePrefix: Bytes;
  readonly #key: Promise<CryptoKey>;
  #received = 0;
  #inOrder = 0;
  #failed = false;
  #released = false;

  private constructor(body: FileBody, noncePrefix: Bytes, fileKey: Bytes) {
    this.body = body;
    this.#parts = new Array<Bytes | undefined>(body.chunks);
    this.#noncePrefix = noncePrefix;
    this.#key = importFileKey(fileKey);
  }

  /** Starts receiving an announced file, or explains why it will not be received. */
  static start(body: FileBody, limits: Limits | null): IncomingFile | string {
    // The sender may have chosen another chunk size; only the server's own bounds apply.
    if (body.size > (limits?.maxFileBytes ?? FALLBACK_MAX_FILE_BYTES)) return 'larger than this server accepts';
    if (limits !== null && body.chunks > limits.maxFileChunks) return 'in more parts than this server accepts';
    const fileKey = fromBase64Url(body.key);
    const noncePrefix = fromBase64Url(body.noncePrefix);
    if (fileKey === null || fileKey.length !== FILE_KEY_BYTES || noncePrefix === null) return 'malformed announcement';
    return new IncomingFile(body, noncePrefix, fileKey);
  }

  get received(): number {
    return this.#received;
  }

  get complete(): boolean {
    return this.#received === this.body.chunks;
  }

  /**
   * Decrypts chunk `seq`; returns true if it was new. Throws TransferError for a chunk
   * that does not belong (bad index or size) and OpenError if it was altered.
   */
  async accept(seq: number, data: Bytes): Promise<boolean> {
    if (this.#failed || this.#released) return false;
    if (seq >= this.body.chunks) throw this.#fail(`chunk ${seq} is beyond the announced ${this.body.chunks}`);
    if (data.length > this.body.chunkSize + GCM_TAG_BYTES) throw this.#fail(`chunk ${seq} is larger than announced`);
    if (this.#parts[seq] !== undefined) return false;
    const last = seq === this.body.chunks - 1;
    try {
      const plaintext = await decryptChunk(await this.#key, this.#noncePrefix, seq, last, data);
      const expected = last ? this.body.size - seq * this.body.chunkSize : this.body.chunkSize;
      if (plaintext.length !== expected) throw new TransferError(`chunk ${seq} has the wrong length`);
      // Released (cancelled, stalled) while this chunk was being decrypted: keep nothing.
      if (this.#released || this.#parts[seq] !== undefined) return false;
      this.#parts[seq] = plaintext;
      this.#received++;
      return true;
    } catch (e: unknown) {
      this.#failed = true;
      throw e;
    }
  }

  /**
   * The chunks decrypted since the last call that continue the file from its start, in
   * order (for playing a video while it arrives). Each was authenticated on its own by
   * STREAM; the checksum of the whole is only known once `assemble` succeeds.
   */
  takeInOrder(): Bytes[] {
    const parts: Bytes[] = [];
    for (let part = this.#parts[this.#inOrder]; part !== undefined && !this.#failed; part = this.#parts[this.#inOrder]) {
      parts.push(part);
      this.#inOrder++;
    }
    return parts;
  }

  /** The whole file once every chunk arrived, after checking its SHA-256. */
  async assemble(): Promise<Bytes> {
    if (!this.complete) throw new TransferError('the file is not complete');
    const whole = new Uint8Array(this.body.size);
    let offset = 0;
    for (const part of this.#parts) {
      if (part === undefined) throw new TransferError('the file is not complete');
      whole.set(part, offset);
      offset += part.length;
    }
    this.#parts.fill(undefined);
    const expected = fromBase64Url(this.body.sha256);
    if (expected === null || !bytesEqual(await sha256(whole), expected)) {
      throw new TransferError('the file’s checksum does not match what the sender announced');
    }
    return whole;
  }

  /**
   * Lets go of every chunk received so far: the transfer will not complete (cancelled by
   * its sender, stalled, failed). Later chunks are not kept either.
   */
  release(): void {
    this.#released = true;
    this.#parts.fill(undefined);
  }

  #fail(message: string): TransferError {
    this.#failed = true;
    return new TransferError(message);
  }
}

/** How a received file can be shown inline, if at all (everything else is only saved). */
export function previewKind(mime: string): 'image' | 'video' | 'audio' | null {
  if (/^image\/(png|jpeg|gif|webp|avif|bmp)$/.test(mime)) return 'image';
  if (/^video\/(mp4|webm|ogg)$/.test(mime)) return 'video';
  if (/^audio\/(mpeg|ogg|wav|x-wav|webm|mp4|aac|flac)$/.test(mime)) return 'audio';
  return null;
}

/** Why a transfer failed, in words, for errors thrown while receiving. */
export function receiveErrorText(e: unknown): string {
  if (e instanceof OpenError) return 'a part of it was altered in transit or is out of place';
  if (e instanceof TransferError) return e.message;
  return e instanceof Error ? e.message : String(e);
}
