// Sealed bodies after decryption: every vector body decodes, unknown types and fields are
// tolerated, and malformed or hostile bodies are refused or cleaned.
import { describe, expect, it } from 'vitest';
import { cleanName, decodeBody, encodeBody } from '../src/content';
import { utf8 } from '../src/encoding';
import { loadVectors } from './vectors';

const vectors = loadVectors();
const KEY = 'ZzIgOryqtI8FsjiWfmBKW59l6_chbVOYDHY7WHEtjj4';

describe('bodies', () => {
  it.skipIf(vectors === null)('decodes every body of the shared vectors', () => {
    for (const vector of vectors?.sealed ?? []) {
      const body = decodeBody(utf8(vector.body));
      expect(body, vector.name).not.toBeNull();
      const type = (JSON.parse(vector.body) as { type: string }).type;
      expect(body?.type).toBe(['profile', 'text', 'typing', 'file'].includes(type) ? type : 'unknown');
    }
  });

  it('round-trips the bodies it writes', () => {
    const bodies = [
      { type: 'profile', name: 'Ada', key: KEY, sentAt: 1 },
      { type: 'text', text: 'hi <b>there</b>', sentAt: 2 },
      { type: 'typing', sentAt: 3 },
      { type: 'file-cancel', file: 'AAAAAAAAAAAAAAAA', sentAt: 5 },
      {
        type: 'file', id: 'AAAAAAAAAAAAAAAA', name: 'cat.png', mime: 'image/png', size: 300, chunkSize: 256,
        chunks: 2, sha256: KEY, key: KEY, noncePrefix: 'AAAAAAAAAA', sentAt: 4,
      },
    ] as const;
    for (const body of bodies) expect(decodeBody(encodeBody(body))).toEqual(body);
  });

  it('refuses a file-cancel without a valid file id', () => {
    expect(decodeBody(utf8('{"type":"file-cancel","sent_at":5}'))).toBeNull();
    expect(decodeBody(utf8('{"type":"file-cancel","file":"not an id","sent_at":5}'))).toBeNull();
    expect(decodeBody(utf8('{"type":"file-cancel","file":"AAAAAAAAAAAAAAAA","extra":1,"sent_at":5}')))
      .toEqual({ type: 'file-cancel', file: 'AAAAAAAAAAAAAAAA', sentAt: 5 });
  });

  it('ignores unknown types and fields, keeps the signed bytes as they are', () => {
    expect(decodeBody(utf8('{"type":"reaction","emoji":"x","sent_at":5}'))).toEqual({ type: 'unknown', sentAt: 5 });
    expect(decodeBody(utf8('{"sent_at":6,"extra":[1],"text":"a","type":"text"}'))).toEqual({ type: 'text', text: 'a', sentAt: 6 });
  });

  it.each([
    ['not JSON', 'hello'],
    ['not UTF-8', '\u00ff'],
    ['an array', '[]'],
    ['no sent_at', '{"type":"text","text":"a"}'],
    ['sent_at as text', '{"type":"text","text":"a","sent_at":"1"}'],
    ['text not a string', '{"type":"text","text":5,"sent_at":1}'],
    ['profile without key', '{"type":"profile","name":"a","sent_at":1}'],
    ['profile with short key', '{"type":"profile","name":"a","key":"AAAA","sent_at":1}'],
    ['profile with empty name', `{"type":"profile","name":"  \\u0000 ","key":"${KEY}","sent_at":1}`],
    ['file with wrong chunk count', `{"type":"file","id":"AAAAAAAAAAAAAAAA","name":"a","mime":"a/b","size":300,"chunk_size":256,"chunks":1,"sha256":"${KEY}","key":"${KEY}","nonce_prefix":"AAAAAAAAAA","sent_at":1}`],
    ['file with bad id', `{"type":"file","id":"short","name":"a","mime":"a/b","size":3,"chunk_size":256,"chunks":1,"sha256":"${KEY}","key":"${KEY}","nonce_prefix":"AAAAAAAAAA","sent_at":1}`],
  ])('refuses %s', (_name, text) => {
    const bytes = text === '\u00ff' ? new Uint8Array([0xff]) : utf8(text);
    expect(decodeBody(bytes)).toBeNull();
  });

  it('cleans names and file names of control and bidi characters, and bounds them', () => {
    expect(cleanName('  Ali\u202ece\u0007 ')).toBe('Alice');
    expect(cleanName('x'.repeat(100))).toHaveLength(64);
    // Found by web_content: the cut came after the trim, so it could end on a space or
    // split an emoji's surrogate pair.
    expect(cleanName(`${'y'.repeat(63)} z`)).toBe('y'.repeat(63));
    expect(cleanName(`${'a'.repeat(63)}👋🏽`)).toBe(`${'a'.repeat(63)}👋`);
    const file = decodeBody(utf8(`{"type":"file","id":"AAAAAAAAAAAAAAAA","name":"../../etc/passwd","mime":"text/html; x","size":1,"chunk_size":256,"chunks":1,"sha256":"${KEY}","key":"${KEY}","nonce_prefix":"AAAAAAAAAA","sent_at":1}`));
    expect(file).toMatchObject({ name: '.._.._etc_passwd', mime: 'application/octet-stream' });
  });
});
