//! Byte encodings shared by the crypto, protocol and content modules: base64url without
//! padding (every binary value in links, profiles and sealed bodies), UTF-8, and
//! concatenation. Decoding is strict so that two encodings never name the same bytes.

/** Bytes backed by a plain ArrayBuffer: what WebCrypto and Socket.IO both accept. */
export type Bytes = Uint8Array<ArrayBuffer>;

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const REVERSE: ReadonlyMap<string, number> = new Map(
  Array.from(ALPHABET, (char, index) => [char, index] as const),
);

/** Encodes bytes as base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += char(n >> 18) + char(n >> 12) + char(n >> 6) + char(n);
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] ?? 0) << 16;
    out += char(n >> 18) + char(n >> 12);
  } else if (rest === 2) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8);
    out += char(n >> 18) + char(n >> 12) + char(n >> 6);
  }
  return out;
}

function char(sextet: number): string {
  return ALPHABET.charAt(sextet & 63);
}

/**
 * Decodes base64url without padding; returns null for anything else (padding, other
 * alphabets, impossible lengths, or non-zero unused bits, which would make the encoding
 * of a given byte string non-unique).
 */
export function fromBase64Url(text: string): Bytes | null {
  if (text.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let buffer = 0;
  let bits = 0;
  let o = 0;
  for (const c of text) {
    const value = REVERSE.get(c);
    if (value === undefined) return null;
    buffer = ((buffer << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (buffer >> bits) & 0xff;
    }
  }
  if ((buffer & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

/** True when `text` is base64url without padding that decodes to exactly `length` bytes. */
export function isBase64UrlOfLength(text: unknown, length: number): text is string {
  if (typeof text !== 'string') return false;
  const bytes = fromBase64Url(text);
  return bytes !== null && bytes.length === length;
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export function utf8(text: string): Bytes {
  return utf8Encoder.encode(text) as Bytes;
}

/** Strict UTF-8 decoding: null for invalid sequences rather than U+FFFD substitutes. */
export function fromUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8Decoder.decode(bytes);
  } catch (e: unknown) {
    if (e instanceof TypeError) return null;
    throw e;
  }
}

export function concatBytes(...parts: readonly Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Copies any binary value received from Socket.IO (ArrayBuffer, Buffer, typed array) into Bytes. */
export function bytesFromBinary(value: unknown): Bytes | null {
  if (value instanceof ArrayBuffer) return new Uint8Array(value.slice(0));
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)) as Bytes;
  }
  return null;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
