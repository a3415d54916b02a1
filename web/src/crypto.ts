//! The client's only cryptography, composed from browser WebCrypto primitives exactly as
//! docs/crypto.md specifies: room secret → room id and message key (HKDF-SHA256),
//! per-session Ed25519 identities and their fingerprints, sealing and opening of every
//! payload sent to a room (AES-256-GCM with a signature inside), and the STREAM
//! construction for file chunks. Nothing here touches the network or the DOM.

import { type Bytes, concatBytes, fromBase64Url, toBase64Url, toHex, utf8 } from './encoding';

/** Every label of v1 starts with this; changing it is a protocol version bump. */
export const LABEL = 'streamchat/v1';
/** HKDF salts of the room id and the lobby key of v2 rooms (docs/crypto.md §17.1). */
export const V2_KNOCK_SALT = 'streamchat/v2';
export const V2_OPEN_SALT = 'streamchat/v2/open';
const SIGNATURE_LABEL = utf8('streamchat/v1/sig');
const CHUNK_AAD = utf8('streamchat/v1/chunk');

export const SECRET_BYTES = 32;
export const ROOM_ID_BYTES = 16;
export const SEALED_VERSION = 0x01;
export const IV_BYTES = 12;
export const SIGNATURE_BYTES = 64;
export const PUBLIC_KEY_BYTES = 32;
export const MAX_MEMBER_BYTES = 64;
export const FILE_KEY_BYTES = 32;
export const NONCE_PREFIX_BYTES = 7;
const GCM_TAG_BYTES = 16;
/** Smallest sealed payload: version, iv, signature, empty body, tag. */
const MIN_SEALED_BYTES = 1 + IV_BYTES + SIGNATURE_BYTES + GCM_TAG_BYTES;
/** DER prefix that turns a 32-byte Ed25519 seed into a PKCS#8 private key (RFC 8410). */
const ED25519_PKCS8_PREFIX = new Uint8Array([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

const ED25519: AlgorithmIdentifier = { name: 'Ed25519' };

/** A room as its members know it: the id the server sees and the key it never sees. */
export interface RoomKeys {
  /** base64url of `roomBytes`, 22 characters: the only room identifier sent to the server. */
  readonly roomId: string;
  readonly roomBytes: Bytes;
  /** AES-256-GCM key, not extractable. */
  readonly messageKey: CryptoKey;
}

/** This tab's identity for one session: an Ed25519 key pair whose private half never leaves WebCrypto. */
export interface Identity {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicKeyBytes: Bytes;
  /** 5 groups of 4 hex digits, e.g. `1a2b 3c4d 5e6f 7081 92a3`. */
  readonly fingerprint: string;
}

/** Why a sealed payload was refused; the UI shows each as a warning, never as text. */
export type OpenFailure = 'format' | 'decrypt' | 'signature';

export class OpenError extends Error {
  readonly kind: OpenFailure;
  constructor(kind: OpenFailure, message: string) {
    super(message);
    this.name = 'OpenError';
    this.kind = kind;
  }
}

/** A decrypted but not yet verified payload. */
export interface Envelope {
  readonly signature: Bytes;
  readonly body: Bytes;
}

export function randomBytes(length: number): Bytes {
  return crypto.getRandomValues(new Uint8Array(length));
}

// ---- Room secret and link ------------------------------------------------------------

export function newRoomSecret(): Bytes {
  return randomBytes(SECRET_BYTES);
}

/** The invite link fragment (without `#`): the secret as 43 base64url characters. */
export function secretToFragment(secret: Uint8Array): string {
  return toBase64Url(secret);
}

/** Parses a link fragment (with or without the leading `#`); null unless it is exactly a 32-byte secret. */
export function secretFromFragment(fragment: string): Bytes | null {
  const text = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  if (text.length !== 43) return null;
  const secret = fromBase64Url(text);
  return secret !== null && secret.length === SECRET_BYTES ? secret : null;
}

/**
 * What kind of room a link names (docs/crypto.md §17.1): `v1` (the bare 43 characters),
 * `knock` (`2.`: a v2 room where newcomers ask to be let in) or `open` (`2o.`: a v2
 * room that lets anyone with the link in).
 */
export type RoomKind = 'v1' | 'knock' | 'open';

const KIND_PREFIX: Record<RoomKind, string> = { v1: '', knock: '2.', open: '2o.' };
const KIND_SALT: Record<RoomKind, string> = { v1: LABEL, knock: V2_KNOCK_SALT, open: V2_OPEN_SALT };

/** The HKDF salt of a kind of room. */
export function saltOf(kind: RoomKind): string {
  return KIND_SALT[kind];
}

/** A room link's fragment (without `#`): the kind's prefix and the secret. */
export function roomFragment(secret: Uint8Array, kind: RoomKind): string {
  return `${KIND_PREFIX[kind]}${secretToFragment(secret)}`;
}

/** Parses a link fragment of any kind (with or without `#`); null unless well formed. */
export function roomFromFragment(fragment: string): { readonly secret: Bytes; readonly kind: RoomKind } | null {
  const text = fragment.startsWith('#') ? fragment.slice(1) : fragment;
  const kind: RoomKind = text.startsWith('2o.') ? 'open' : text.startsWith('2.') ? 'knock' : 'v1';
  const secret = secretFromFragment(text.slice(KIND_PREFIX[kind].length));
  return secret === null ? null : { secret, kind };
}

/** The raw outputs of the room HKDF; exposed for the test vectors, otherwise use deriveRoomKeys. */
export async function deriveRoomMaterial(secret: Bytes, salt: string = LABEL): Promise<{ roomBytes: Bytes; messageKeyBytes: Bytes }> {
  if (secret.length !== SECRET_BYTES) throw new RangeError(`room secret must be ${SECRET_BYTES} bytes`);
  const ikm = await crypto.subtle.importKey('raw', secret, 'HKDF', false, ['deriveBits']);
  const derive = async (info: string, length: number): Promise<Bytes> =>
    new Uint8Array(
      await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: utf8(salt), info: utf8(info) }, ikm, length * 8),
    );
  return { roomBytes: await derive('room-id', ROOM_ID_BYTES), messageKeyBytes: await derive('message-key', 32) };
}

/** The room id and message key; for a v2 room (`salt` of §17.1) the message key is the lobby key. */
export async function deriveRoomKeys(secret: Bytes, salt: string = LABEL): Promise<RoomKeys> {
  const { roomBytes, messageKeyBytes } = await deriveRoomMaterial(secret, salt);
  const messageKey = await crypto.subtle.importKey('raw', messageKeyBytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
  messageKeyBytes.fill(0);
  return { roomId: toBase64Url(roomBytes), roomBytes, messageKey };
}

// ---- Identity --------------------------------------------------------------------------

/** A fresh per-session identity; the private key is not extractable. */
export async function generateIdentity(): Promise<Identity> {
  const pair = (await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify'])) as CryptoKeyPair;
  return identityFromPair(pair.privateKey, pair.publicKey);
}

/** A deterministic identity from a 32-byte seed, for test vectors and tools. */
export async function identityFromSeed(seed: Bytes): Promise<Identity> {
  if (seed.length !== 32) throw new RangeError('Ed25519 seed must be 32 bytes');
  const pkcs8 = concatBytes(ED25519_PKCS8_PREFIX, seed);
  // Extractable only so that the public half can be derived: WebCrypto has no
  // "public key from private key" call, and a JWK export of a private key carries `x`.
  const extractable = await crypto.subtle.importKey('pkcs8', pkcs8, ED25519, true, ['sign']);
  const jwk = await crypto.subtle.exportKey('jwk', extractable);
  const x = typeof jwk.x === 'string' ? fromBase64Url(jwk.x) : null;
  if (x === null || x.length !== PUBLIC_KEY_BYTES) throw new Error('could not derive the Ed25519 public key');
  const privateKey = await crypto.subtle.importKey('pkcs8', pkcs8, ED25519, false, ['sign']);
  pkcs8.fill(0);
  return identityFromPair(privateKey, await importPublicKey(x));
}

async function identityFromPair(privateKey: CryptoKey, publicKey: CryptoKey): Promise<Identity> {
  const publicKeyBytes = new Uint8Array(await crypto.subtle.exportKey('raw', publicKey));
  return { privateKey, publicKey, publicKeyBytes, fingerprint: await fingerprintOf(publicKeyBytes) };
}

/** Imports a raw 32-byte Ed25519 public key for verification. */
export async function importPublicKey(bytes: Bytes): Promise<CryptoKey> {
  if (bytes.length !== PUBLIC_KEY_BYTES) throw new OpenError('format', 'an Ed25519 public key is 32 bytes');
  return crypto.subtle.importKey('raw', bytes, ED25519, true, ['verify']);
}

/** First 10 bytes of SHA-256(public key) as 5 groups of 4 hex digits. */
export async function fingerprintOf(publicKeyBytes: Bytes): Promise<string> {
  const digest = await sha256(publicKeyBytes);
  const hex = toHex(digest.subarray(0, 10));
  return hex.match(/.{4}/g)?.join(' ') ?? hex;
}

export async function sha256(bytes: Bytes): Promise<Bytes> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
}

// ---- Sealed payloads -------------------------------------------------------------------

/** `m = len(1 byte) || member as UTF-8`, at most 64 bytes. */
export function memberField(member: string): Bytes {
  const bytes = utf8(member);
  if (bytes.length === 0 || bytes.length > MAX_MEMBER_BYTES) {
    throw new OpenError('format', `a member id is 1 to ${MAX_MEMBER_BYTES} bytes of UTF-8`);
  }
  return concatBytes(new Uint8Array([bytes.length]), bytes);
}

/** `aad = "streamchat/v1" || room_bytes || m` */
export function sealedAad(roomBytes: Bytes, member: string): Bytes {
  return concatBytes(utf8(LABEL), roomBytes, memberField(member));
}

/** `signed = "streamchat/v1/sig" || room_bytes || m || body` */
export function signedBytes(roomBytes: Bytes, member: string, body: Uint8Array): Bytes {
  return concatBytes(SIGNATURE_LABEL, roomBytes, memberField(member), body);
}

/**
 * Seals `body` from `member` for the room: `0x01 || iv || AES-256-GCM(sig || body, aad)`.
 * `iv` is random unless given (only test vectors give it: an iv must never repeat under a key).
 */
export async function seal(
  room: RoomKeys,
  identity: Pick<Identity, 'privateKey'>,
  member: string,
  body: Bytes,
  iv: Bytes = randomBytes(IV_BYTES),
): Promise<Bytes> {
  if (iv.length !== IV_BYTES) throw new RangeError(`iv must be ${IV_BYTES} bytes`);
  const signature = new Uint8Array(
    await crypto.subtle.sign(ED25519, identity.privateKey, signedBytes(room.roomBytes, member, body)),
  );
  const ciphertext = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: sealedAad(room.roomBytes, member) },
      room.messageKey,
      concatBytes(signature, body),
    ),
  );
  return concatBytes(new Uint8Array([SEALED_VERSION]), iv, ciphertext);
}

/** Decrypts a sealed payload said to come from `member`; the signature is checked separately. */
export async function openEnvelope(room: RoomKeys, member: string, sealed: Bytes): Promise<Envelope> {
  if (sealed.length < MIN_SEALED_BYTES) throw new OpenError('format', 'sealed payload is too short');
  if (sealed[0] !== SEALED_VERSION) throw new OpenError('format', `unknown sealed version ${String(sealed[0])}`);
  const aad = sealedAad(room.roomBytes, member);
  let plaintext: Bytes;
  try {
    plaintext = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: sealed.slice(1, 1 + IV_BYTES), additionalData: aad },
        room.messageKey,
        sealed.slice(1 + IV_BYTES),
      ),
    );
  } catch (e: unknown) {
    if (e instanceof Error && e.name === 'OperationError') {
      throw new OpenError('decrypt', 'could not decrypt: wrong room, wrong sender or altered in transit');
    }
    throw e;
  }
  return { signature: plaintext.slice(0, SIGNATURE_BYTES), body: plaintext.slice(SIGNATURE_BYTES) };
}

/** Checks the envelope's signature with the sender's public key; throws OpenError('signature') if it fails. */
export async function verifyEnvelope(publicKey: CryptoKey, room: RoomKeys, member: string, envelope: Envelope): Promise<void> {
  const ok = await crypto.subtle.verify(
    ED25519,
    publicKey,
    envelope.signature,
    signedBytes(room.roomBytes, member, envelope.body),
  );
  if (!ok) throw new OpenError('signature', 'the signature does not match the sender’s key');
}

/** Decrypts and verifies in one step, for a sender whose key is already known. */
export async function open(room: RoomKeys, member: string, publicKey: CryptoKey, sealed: Bytes): Promise<Bytes> {
  const envelope = await openEnvelope(room, member, sealed);
  await verifyEnvelope(publicKey, room, member, envelope);
  return envelope.body;
}

// ---- File chunks (STREAM) ---------------------------------------------------------------

/** `nonce = prefix(7) || index (u32 big-endian) || last (1 byte)` */
export function chunkNonce(noncePrefix: Uint8Array, index: number, last: boolean): Bytes {
  if (noncePrefix.length !== NONCE_PREFIX_BYTES) throw new RangeError(`nonce prefix must be ${NONCE_PREFIX_BYTES} bytes`);
  if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) throw new RangeError('chunk index must be a u32');
  const nonce = new Uint8Array(IV_BYTES);
  nonce.set(noncePrefix, 0);
  new DataView(nonce.buffer).setUint32(NONCE_PREFIX_BYTES, index, false);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

export async function importFileKey(bytes: Bytes): Promise<CryptoKey> {
  if (bytes.length !== FILE_KEY_BYTES) throw new RangeError(`file key must be ${FILE_KEY_BYTES} bytes`);
  return crypto.subtle.importKey('raw', bytes, 'AES-GCM', false, ['encrypt', 'decrypt']);
}

/** A new file's secrets: the key travels only inside the sealed `file` body. */
export function newFileSecrets(): { fileKey: Bytes; noncePrefix: Bytes } {
  return { fileKey: randomBytes(FILE_KEY_BYTES), noncePrefix: randomBytes(NONCE_PREFIX_BYTES) };
}

export async function encryptChunk(fileKey: CryptoKey, noncePrefix: Uint8Array, index: number, last: boolean, plaintext: Bytes): Promise<Bytes> {
  return new Uint8Array(
    await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: chunkNonce(noncePrefix, index, last), additionalData: CHUNK_AAD },
      fileKey,
      plaintext,
    ),
  );
}

/** Decrypts chunk `index`; fails (OpenError 'decrypt') if it was altered, moved, or its last flag is wrong. */
export async function decryptChunk(fileKey: CryptoKey, noncePrefix: Uint8Array, index: number, last: boolean, ciphertext: Bytes): Promise<Bytes> {
  try {
    return new Uint8Array(
      await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: chunkNonce(noncePrefix, index, last), additionalData: CHUNK_AAD },
        fileKey,
        ciphertext,
      ),
    );
  } catch (e: unknown) {
    if (e instanceof Error && e.name === 'OperationError') {
      throw new OpenError('decrypt', `file chunk ${index} could not be decrypted`);
    }
    throw e;
  }
}

/** Number of chunks a file of `size` bytes is cut into; an empty file is one empty chunk. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.max(1, Math.ceil(size / chunkSize));
}
