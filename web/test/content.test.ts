// Sealed bodies after decryption: every vector body decodes, unknown types and fields are
// tolerated, and malformed or hostile bodies are refused or cleaned.
import { describe, expect, it } from 'vitest';
import { cleanName, cutQuote, decodeBody, encodeBody, isEmojiLike } from '../src/content';
import { identityFromSeed } from '../src/crypto';
import { fromBase64Url, toBase64Url } from '../src/encoding';
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
      expect(body?.type).toBe(['profile', 'text', 'typing', 'file', 'reaction', 'edit', 'delete'].includes(type) ? type : 'unknown');
    }
  });

  it.skipIf(vectors === null)('reads the reply, reaction, edit and delete vectors as naming Alice’s text', async () => {
    const all = vectors?.sealed ?? [];
    const find = (prefix: string) => {
      const vector = all.find((v) => v.name.startsWith(prefix));
      if (vector === undefined) throw new Error(`no vector ${prefix}`);
      return vector;
    };
    const signer = async (prefix: string) => toBase64Url((await identityFromSeed(fromBase64Url(find(prefix).seed) ?? new Uint8Array())).publicKeyBytes);
    const target = decodeBody(utf8(find('text with non-ASCII').body));
    const author = await signer('text with non-ASCII');
    expect(target?.type).toBe('text');
    const ref = { key: author, sentAt: target?.sentAt };
    const reply = decodeBody(utf8(find('reply').body));
    expect(reply).toMatchObject({ type: 'text', text: 'Hallo! 👋', replyTo: ref, quote: 'Grüße, 世界! 👋🏽 Ünïcödé' });
    expect(decodeBody(utf8(find('reaction taken back').body))).toMatchObject({ type: 'reaction', to: ref, emoji: '👍🏽', add: false });
    expect(decodeBody(utf8(find('reaction').body))).toMatchObject({ type: 'reaction', to: ref, emoji: '👍🏽', add: true });
    expect(decodeBody(utf8(find('edit by the author').body))).toMatchObject({ type: 'edit', to: ref, text: 'Grüße, Welt! (edited)' });
    expect(await signer('edit by the author')).toBe(author);
    expect(decodeBody(utf8(find('delete by the author').body))).toMatchObject({ type: 'delete', to: ref });
    expect(await signer('delete by the author')).toBe(author);
    // Well-formed and signed, but by Bob: receivers must not apply it (room.ts / conversation.ts).
    expect(decodeBody(utf8(find('edit of another member').body))).toMatchObject({ type: 'edit', to: ref });
    expect(await signer('edit of another member')).not.toBe(author);
    // The web client writes these bodies byte for byte as the vectors (and Rust) do.
    for (const prefix of ['reply', 'reaction', 'reaction taken back', 'edit by the author', 'delete by the author']) {
      const vector = find(prefix);
      const body = decodeBody(utf8(vector.body));
      if (body === null || body.type === 'profile' || body.type === 'typing' || body.type === 'file' || body.type === 'file-cancel' || body.type === 'unknown') throw new Error(prefix);
      expect(new TextDecoder().decode(encodeBody(body)), prefix).toBe(vector.body);
    }
  });

  it('checks the limits of replies, reactions and edits', () => {
    const to = `{"key":"${KEY}","sent_at":5}`;
    const quote = '😀'.repeat(100);
    expect(decodeBody(utf8(`{"type":"text","text":"a","reply_to":${to},"quote":"${quote}","sent_at":1}`))).not.toBeNull();
    expect(decodeBody(utf8(`{"type":"text","text":"a","reply_to":${to},"quote":"${quote}x","sent_at":1}`))).toBeNull();
    expect(decodeBody(utf8(`{"type":"text","text":"a","reply_to":5,"sent_at":1}`))).toBeNull();
    expect(decodeBody(utf8(`{"type":"edit","to":${to},"text":"${'x'.repeat(16_000)}","sent_at":1}`))).not.toBeNull();
    expect(decodeBody(utf8(`{"type":"edit","to":${to},"text":"${'x'.repeat(16_001)}","sent_at":1}`))).toBeNull();
    for (const good of ['👍', '👨‍👩‍👧‍👦', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '1️⃣', 'ok']) {
      expect(isEmojiLike(good), good).toBe(true);
      expect(decodeBody(utf8(`{"type":"reaction","to":${to},"emoji":"${good}","add":true,"sent_at":1}`)), good).not.toBeNull();
    }
    for (const bad of ['', ' ', 'a b', '\\u0007', '\\u202e', '\\ufeff', '\\u00a0', 'x'.repeat(33)]) {
      expect(decodeBody(utf8(`{"type":"reaction","to":${to},"emoji":"${bad}","add":true,"sent_at":1}`)), bad).toBeNull();
    }
    for (const bad of [
      `{"type":"reaction","to":${to},"emoji":"👍","sent_at":1}`,
      `{"type":"reaction","to":${to},"emoji":"👍","add":1,"sent_at":1}`,
      '{"type":"delete","to":{"key":"AAAA","sent_at":1},"sent_at":1}',
      `{"type":"delete","to":{"key":"${KEY}"},"sent_at":1}`,
      `{"type":"edit","to":${to},"sent_at":1}`,
      '{"type":"edit","text":"x","sent_at":1}',
    ]) expect(decodeBody(utf8(bad)), bad).toBeNull();
    expect(cutQuote('a😀b', 2)).toBe('a');
    expect(cutQuote('a😀b', 3)).toBe('a😀');
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
    expect(decodeBody(utf8('{"type":"poll","emoji":"x","sent_at":5}'))).toEqual({ type: 'unknown', sentAt: 5 });
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
