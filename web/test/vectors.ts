// Loads testdata/crypto-vectors.json (written by scripts/gen-crypto-vectors.py and shared
// with the Rust crypto crate) and checks its shape, so a drift in the file fails loudly
// instead of testing nothing. STREAMCHAT_VECTORS may point at another file of that shape.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Bytes, fromBase64Url } from '../src/encoding';

export interface RoomV2Vector { link_fragment: string; room_id: string; lobby_key: string }
export interface RoomVector {
  secret: string; link_fragment: string; room_id: string; message_key: string;
  /** docs/crypto.md §17.1: the same secret's v2 knock and open rooms. */
  v2?: { knock: RoomV2Vector; open: RoomV2Vector };
}
export interface IdentityVector { seed: string; public_key: string; fingerprint: string }
export interface SealedVector {
  name: string; secret: string; member: string; seed: string; iv: string;
  /** The body as UTF-8 text (JSON), not base64url. */
  body: string; aad: string; signed: string; signature: string; sealed: string;
}
export interface InvalidVector {
  name: string; secret: string; member: string; public_key: string; sealed: string;
  error: 'decrypt' | 'signature' | 'format';
}
export interface FileVector {
  name: string; file_key: string; nonce_prefix: string; chunk_size: number;
  plaintext: string; sha256: string; chunks: string[];
}
export interface Vectors {
  rooms: RoomVector[]; identities: IdentityVector[]; sealed: SealedVector[];
  invalid: InvalidVector[]; files: FileVector[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const vectorsPath = process.env.STREAMCHAT_VECTORS ?? path.resolve(here, '../../testdata/crypto-vectors.json');

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkArray(root: Record<string, unknown>, key: string, fields: readonly string[]): void {
  const list = root[key];
  if (!Array.isArray(list) || list.length === 0) throw new Error(`${vectorsPath}: "${key}" must be a non-empty array`);
  list.forEach((item: unknown, i) => {
    if (!isRecord(item)) throw new Error(`${key}[${i}] is not an object`);
    for (const field of fields) {
      if (!(field in item)) throw new Error(`${key}[${i}] lacks "${field}"`);
    }
  });
}

/** The vectors, or null when the file does not exist (outside CI only; see crypto.test.ts). */
export function loadVectors(): Vectors | null {
  if (!existsSync(vectorsPath)) return null;
  const root: unknown = JSON.parse(readFileSync(vectorsPath, 'utf8'));
  if (!isRecord(root)) throw new Error(`${vectorsPath}: not a JSON object`);
  checkArray(root, 'rooms', ['secret', 'link_fragment', 'room_id', 'message_key']);
  checkArray(root, 'identities', ['seed', 'public_key', 'fingerprint']);
  checkArray(root, 'sealed', ['name', 'secret', 'member', 'seed', 'iv', 'body', 'aad', 'signed', 'signature', 'sealed']);
  checkArray(root, 'invalid', ['name', 'secret', 'member', 'public_key', 'sealed', 'error']);
  checkArray(root, 'files', ['name', 'file_key', 'nonce_prefix', 'chunk_size', 'plaintext', 'sha256', 'chunks']);
  return root as unknown as Vectors;
}

/** Decodes a base64url field of a vector, failing the test on malformed data. */
export function b64(text: string): Bytes {
  const bytes = fromBase64Url(text);
  if (bytes === null) throw new Error(`not base64url without padding: ${text.slice(0, 40)}`);
  return bytes;
}
