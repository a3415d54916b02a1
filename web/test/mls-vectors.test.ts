// Checks every entry of testdata/mls-vectors.json (written by the Rust engine,
// crates/mls/tests/vectors.rs, which checks the same file): the values both MLS engines
// must agree on without randomness. The group id of a room, and the length of a sealed
// application message in a group of one member at epoch 0: the padding rule, so that a
// message's length does not tell which client sealed it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '../src/crypto';
import { toHex } from '../src/encoding';
import { createGroup, groupIdOf } from '../src/mls';
import { b64 } from './vectors';

interface MlsVectors {
  version: number;
  generator: string;
  group_ids: { room: string; group_id: string }[];
  sealed_lengths: { room: string; epoch: number; lengths: { plaintext: number; sealed: number }[] };
}

const here = path.dirname(fileURLToPath(import.meta.url));
const vectorsPath = path.resolve(here, '../../testdata/mls-vectors.json');
// The file is tracked: a missing or reshaped file fails here rather than testing nothing.
const vectors = JSON.parse(readFileSync(vectorsPath, 'utf8')) as MlsVectors;

describe(`MLS vectors (${vectorsPath})`, () => {
  it('has the shape both engines read', () => {
    expect(vectors.version).toBe(1);
    expect(Object.keys(vectors).sort()).toEqual(['generator', 'group_ids', 'sealed_lengths', 'version']);
    expect(vectors.group_ids.length).toBeGreaterThan(0);
    expect(vectors.sealed_lengths.lengths.length).toBeGreaterThan(0);
  });

  it('group ids', async () => {
    for (const v of vectors.group_ids) {
      expect(toHex(await groupIdOf(v.room)), JSON.stringify(v.room)).toBe(toHex(b64(v.group_id)));
    }
  });

  it('sealed lengths (the padding rule)', async () => {
    const { room, epoch, lengths } = vectors.sealed_lengths;
    for (const v of lengths) {
      const group = await createGroup(await generateIdentity(), room);
      expect(group.epoch).toBe(BigInt(epoch));
      const sealed = await group.seal(new Uint8Array(v.plaintext).fill(0x61));
      expect(sealed.length, `${v.plaintext} bytes`).toBe(v.sealed);
    }
  });
});
