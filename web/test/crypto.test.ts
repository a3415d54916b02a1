// The crypto module against every shared test vector (so the browser and the Rust crate
// cannot drift apart), plus tampering: flipped bytes, wrong room, wrong member, wrong key.
import { hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  OpenError, chunkCount, decryptChunk, deriveRoomKeys, deriveRoomMaterial, encryptChunk,
  fingerprintOf, generateIdentity, identityFromSeed, importFileKey, importPublicKey,
  newFileSecrets, newRoomSecret, open, openEnvelope, roomFragment, roomFromFragment, saltOf, seal, sealedAad,
  secretFromFragment, secretToFragment, sha256, signedBytes, verifyEnvelope, type OpenFailure,
} from '../src/crypto';
import { concatBytes, fromUtf8, toBase64Url, utf8 } from '../src/encoding';
import { b64, loadVectors, vectorsPath } from './vectors';

const vectors = loadVectors();
// Outside CI a missing file only skips (another part of the project writes it); in CI it
// must be there, or the cross-implementation check would silently vanish.
if (vectors === null && process.env.CI === 'true') throw new Error(`missing ${vectorsPath}`);
const withVectors = describe.skipIf(vectors === null);

async function expectOpenFailure(promise: Promise<unknown>, kind: OpenFailure): Promise<void> {
  const error: unknown = await promise.then(() => null, (e: unknown) => e);
  expect(error).toBeInstanceOf(OpenError);
  expect((error as OpenError).kind).toBe(kind);
}

withVectors(`crypto vectors (${vectorsPath})`, () => {
  const v = vectors ?? { rooms: [], identities: [], sealed: [], invalid: [], files: [] };

  it.each(v.rooms)('room $room_id from its secret and link', async (room) => {
    const secret = b64(room.secret);
    expect(secretToFragment(secret)).toBe(room.link_fragment);
    expect(secretFromFragment(`#${room.link_fragment}`)).toEqual(secret);
    const material = await deriveRoomMaterial(secret);
    expect(toBase64Url(material.roomBytes)).toBe(room.room_id);
    expect(toBase64Url(material.messageKeyBytes)).toBe(room.message_key);
    expect((await deriveRoomKeys(secret)).roomId).toBe(room.room_id);
  });

  it.each(v.rooms.filter((room) => room.v2 !== undefined))('v2 rooms $room_id: links, room ids and lobby keys (§17.1)', async (room) => {
    const secret = b64(room.secret);
    for (const kind of ['knock', 'open'] as const) {
      const expected = room.v2?.[kind];
      if (expected === undefined) throw new Error(`no ${kind} vector`);
      expect(roomFragment(secret, kind)).toBe(expected.link_fragment);
      expect(roomFromFragment(`#${expected.link_fragment}`)).toEqual({ secret, kind });
      const material = await deriveRoomMaterial(secret, saltOf(kind));
      expect(toBase64Url(material.roomBytes)).toBe(expected.room_id);
      expect(toBase64Url(material.messageKeyBytes)).toBe(expected.lobby_key);
      expect((await deriveRoomKeys(secret, saltOf(kind))).roomId).toBe(expected.room_id);
    }
  });

  it.each(v.identities)('identity $fingerprint from its seed', async (identity) => {
    const derived = await identityFromSeed(b64(identity.seed));
    expect(toBase64Url(derived.publicKeyBytes)).toBe(identity.public_key);
    expect(derived.fingerprint).toBe(identity.fingerprint);
    expect(await fingerprintOf(b64(identity.public_key))).toBe(identity.fingerprint);
  });

  it.each(v.sealed)('sealed "$name": aad, signed bytes, signature and sealed bytes match', async (vector) => {
    const room = await deriveRoomKeys(b64(vector.secret));
    const identity = await identityFromSeed(b64(vector.seed));
    // `body` is the JSON text itself (UTF-8), every other binary field base64url.
    const body = utf8(vector.body);
    expect(toBase64Url(sealedAad(room.roomBytes, vector.member))).toBe(vector.aad);
    expect(toBase64Url(signedBytes(room.roomBytes, vector.member, body))).toBe(vector.signed);
    const sealed = await seal(room, identity, vector.member, body, b64(vector.iv));
    expect(toBase64Url(sealed)).toBe(vector.sealed);
    const envelope = await openEnvelope(room, vector.member, b64(vector.sealed));
    expect(toBase64Url(envelope.signature)).toBe(vector.signature);
    expect(fromUtf8(envelope.body)).toBe(vector.body);
    expect(await open(room, vector.member, identity.publicKey, b64(vector.sealed))).toEqual(body);
  });

  it.each(v.invalid)('invalid "$name" is refused with "$error"', async (vector) => {
    const room = await deriveRoomKeys(b64(vector.secret));
    const attempt = (async () => {
      const publicKey = await importPublicKey(b64(vector.public_key));
      return open(room, vector.member, publicKey, b64(vector.sealed));
    })();
    await expectOpenFailure(attempt, vector.error);
  });

  it.each(v.files)('file "$name": STREAM chunks encrypt, decrypt and hash as expected', async (vector) => {
    const fileKey = await importFileKey(b64(vector.file_key));
    const prefix = b64(vector.nonce_prefix);
    const plaintext = b64(vector.plaintext);
    expect(toBase64Url(await sha256(plaintext))).toBe(vector.sha256);
    expect(vector.chunks.length).toBe(chunkCount(plaintext.length, vector.chunk_size));
    const parts: Uint8Array[] = [];
    for (const [index, expected] of vector.chunks.entries()) {
      const last = index === vector.chunks.length - 1;
      const slice = plaintext.slice(index * vector.chunk_size, (index + 1) * vector.chunk_size);
      expect(toBase64Url(await encryptChunk(fileKey, prefix, index, last, slice))).toBe(expected);
      parts.push(await decryptChunk(fileKey, prefix, index, last, b64(expected)));
    }
    expect(toBase64Url(concatBytes(...parts))).toBe(vector.plaintext);
    if (vector.chunks.length > 1) {
      // Reordering or dropping the last chunk (truncation) is detected.
      await expectOpenFailure(decryptChunk(fileKey, prefix, 0, false, b64(vector.chunks[1] ?? '')), 'decrypt');
      await expectOpenFailure(decryptChunk(fileKey, prefix, 0, true, b64(vector.chunks[0] ?? '')), 'decrypt');
    }
  });
});

describe('room secret and link', () => {
  it('new secrets are 32 random bytes and 43 link characters', () => {
    const a = newRoomSecret();
    expect(a.length).toBe(32);
    expect(secretToFragment(a)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(secretToFragment(a)).not.toBe(secretToFragment(newRoomSecret()));
  });

  it('rejects fragments that are not exactly a secret', () => {
    const good = secretToFragment(newRoomSecret());
    expect(secretFromFragment(good)).not.toBeNull();
    for (const bad of ['', '#', good.slice(0, 42), `${good}A`, `${good.slice(0, 42)}=`, `${good.slice(0, 42)}+`, `${good.slice(0, 42)}/`]) {
      expect(secretFromFragment(bad)).toBeNull();
    }
  });
});

describe('v2 links and salts (docs/crypto.md §17.1)', () => {
  const secret = Uint8Array.from({ length: 32 }, (_, i) => i);
  const hkdf = (salt: string, info: string, length: number): string =>
    toBase64Url(new Uint8Array(hkdfSync('sha256', secret, salt, info, length)));

  it('derive the room id and lobby key with their own salt; v1 is unchanged', async () => {
    for (const [kind, salt] of [['v1', 'streamchat/v1'], ['knock', 'streamchat/v2'], ['open', 'streamchat/v2/open']] as const) {
      expect(saltOf(kind)).toBe(salt);
      const material = await deriveRoomMaterial(secret, saltOf(kind));
      expect(toBase64Url(material.roomBytes)).toBe(hkdf(salt, 'room-id', 16));
      expect(toBase64Url(material.messageKeyBytes)).toBe(hkdf(salt, 'message-key', 32));
    }
    expect((await deriveRoomKeys(secret)).roomId).toBe('omSJoNPRAws3-XOnTkTuRw');
    const ids = await Promise.all((['v1', 'knock', 'open'] as const).map(async (kind) => (await deriveRoomKeys(secret, saltOf(kind))).roomId));
    expect(new Set(ids).size).toBe(3);
  });

  it('links: bare for v1, 2. for a knock room, 2o. for an open one', () => {
    const bare = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8';
    expect(roomFragment(secret, 'v1')).toBe(bare);
    expect(roomFragment(secret, 'knock')).toBe(`2.${bare}`);
    expect(roomFragment(secret, 'open')).toBe(`2o.${bare}`);
    expect(roomFromFragment(`#${bare}`)).toEqual({ secret, kind: 'v1' });
    expect(roomFromFragment(`#2.${bare}`)).toEqual({ secret, kind: 'knock' });
    expect(roomFromFragment(`2o.${bare}`)).toEqual({ secret, kind: 'open' });
    for (const bad of ['#2.', `#2.${bare.slice(1)}`, `#2x.${bare}`, `#3.${bare}`, `#2o${bare}`, `#2..${bare}`]) expect(roomFromFragment(bad)).toBeNull();
  });
});

describe('sealing and tampering', () => {
  const member = 'sid-alice-123';
  const body = utf8(JSON.stringify({ type: 'text', text: 'meet at noon', sent_at: 1 }));

  async function setup() {
    const room = await deriveRoomKeys(newRoomSecret());
    const identity = await generateIdentity();
    return { room, identity, sealed: await seal(room, identity, member, body) };
  }

  it('a fresh identity has a non-extractable private key and a 24-character fingerprint', async () => {
    const identity = await generateIdentity();
    expect(identity.privateKey.extractable).toBe(false);
    expect(identity.publicKeyBytes.length).toBe(32);
    expect(identity.fingerprint).toMatch(/^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
  });

  it('round-trips and uses a new iv each time', async () => {
    const { room, identity, sealed } = await setup();
    expect(await open(room, member, identity.publicKey, sealed)).toEqual(body);
    const again = await seal(room, identity, member, body);
    expect(toBase64Url(again.subarray(1, 13))).not.toBe(toBase64Url(sealed.subarray(1, 13)));
  });

  it('detects a flipped byte anywhere after the version', async () => {
    const { room, identity, sealed } = await setup();
    for (const at of [1, 12, 13, 40, sealed.length - 1]) {
      const tampered = sealed.slice();
      tampered[at] = (tampered[at] ?? 0) ^ 0x01;
      await expectOpenFailure(open(room, member, identity.publicKey, tampered), 'decrypt');
    }
  });

  it('detects a message moved to another room', async () => {
    const { identity, sealed } = await setup();
    const otherRoom = await deriveRoomKeys(newRoomSecret());
    await expectOpenFailure(open(otherRoom, member, identity.publicKey, sealed), 'decrypt');
  });

  it('detects a message re-attributed to another member', async () => {
    const { room, identity, sealed } = await setup();
    await expectOpenFailure(open(room, 'sid-mallory', identity.publicKey, sealed), 'decrypt');
  });

  it('detects a signature by another key (a member sealing in someone else’s name)', async () => {
    const { room, sealed } = await setup();
    const other = await generateIdentity();
    await expectOpenFailure(open(room, member, other.publicKey, sealed), 'signature');
    const envelope = await openEnvelope(room, member, sealed);
    const forged = { signature: envelope.signature, body: utf8('{"type":"text","text":"forged","sent_at":1}') };
    await expectOpenFailure(verifyEnvelope((await setup()).identity.publicKey, room, member, forged), 'signature');
  });

  it('refuses malformed payloads with "format"', async () => {
    const { room, identity, sealed } = await setup();
    const wrongVersion = sealed.slice();
    wrongVersion[0] = 2;
    await expectOpenFailure(open(room, member, identity.publicKey, wrongVersion), 'format');
    await expectOpenFailure(open(room, member, identity.publicKey, sealed.slice(0, 50)), 'format');
    await expectOpenFailure(open(room, 'x'.repeat(65), identity.publicKey, sealed), 'format');
    await expectOpenFailure(importPublicKey(new Uint8Array(31)), 'format');
  });
});

describe('file chunks (STREAM)', () => {
  it('round-trips, and a chunk under the wrong key, index or last flag fails', async () => {
    const { fileKey, noncePrefix } = newFileSecrets();
    const key = await importFileKey(fileKey);
    const data = utf8('chunk zero');
    const ciphertext = await encryptChunk(key, noncePrefix, 0, false, data);
    expect(await decryptChunk(key, noncePrefix, 0, false, ciphertext)).toEqual(data);
    await expectOpenFailure(decryptChunk(key, noncePrefix, 1, false, ciphertext), 'decrypt');
    await expectOpenFailure(decryptChunk(key, noncePrefix, 0, true, ciphertext), 'decrypt');
    const wrongKey = await importFileKey(newFileSecrets().fileKey);
    await expectOpenFailure(decryptChunk(wrongKey, noncePrefix, 0, false, ciphertext), 'decrypt');
    const flipped = ciphertext.slice();
    flipped[0] = (flipped[0] ?? 0) ^ 0x80;
    await expectOpenFailure(decryptChunk(key, noncePrefix, 0, false, flipped), 'decrypt');
  });

  it('counts chunks, an empty file being one chunk', () => {
    expect(chunkCount(0, 1024)).toBe(1);
    expect(chunkCount(1024, 1024)).toBe(1);
    expect(chunkCount(1025, 1024)).toBe(2);
  });
});
