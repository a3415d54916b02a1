// web_content: what a member writes, once decrypted, and links, as the web client reads
// them: message bodies (decodeBody, src/content.ts), names (cleanName), base64url and
// UTF-8 (src/encoding.ts), invite link fragments (secretFromFragment, src/crypto.ts) and
// links in messages (linkSegments, src/format.ts). A room member can sign any body, and
// anyone can send a link: all of it is untrusted.
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { type Body, cleanName, decodeBody, encodeBody, isEmojiLike, MAX_NAME_CHARS, MAX_QUOTE_CHARS, MAX_TEXT_CHARS } from '../src/content';
import { secretFromFragment, secretToFragment } from '../src/crypto';
import { fromBase64Url, fromUtf8, isBase64UrlOfLength, toBase64Url, utf8 } from '../src/encoding';
import { linkSegments } from '../src/format';
import { loadVectors } from '../test/vectors';
import { TEST_TIMEOUT_MS, bytesFrom, fuzz, textFrom, type Outcomes } from './harness';

const vectors = loadVectors();
const KEY = 'ZzIgOryqtI8FsjiWfmBKW59l6_chbVOYDHY7WHEtjj4';
const BODIES = [
  ...(vectors?.sealed ?? []).map((v) => v.body),
  `{"type":"file-cancel","file":"YokwpkO2hA_0QRwJ","sent_at":1767225600000}`,
  `{"type":"file","id":"AAAAAAAAAAAAAAAA","name":"../../etc/passwd\\u202e.txt","mime":"Text/HTML","size":300,"chunk_size":256,"chunks":2,"sha256":"${KEY}","key":"${KEY}","nonce_prefix":"AAAAAAAAAA","sent_at":1}`,
  `{"type":"profile","name":"  \\u0007Mallory\\u2066 ","key":"${KEY}","sent_at":1}`,
  `{"type":"text","text":"see https://example.org/a?b=1, or (http://x.example/).","sent_at":1}`,
];
const TEXTS = [
  ...(vectors?.rooms ?? []).map((r) => r.link_fragment),
  ...(vectors?.rooms ?? []).map((r) => `#${r.link_fragment}`),
  ...(vectors?.identities ?? []).map((i) => i.public_key),
  'see https://example.org/a?b=1, or (http://x.example/).',
  'https://[::1]:8000/#frag http://a.b/c)d] www.example.org javascript:alert(1) https://',
  '  Zoë 🦀\u202e\u0007 ',
  'x'.repeat(70),
  `${'y'.repeat(63)} z`,
  `${'a'.repeat(63)}👋🏽`,
];

// What cleanName removes: C0 controls, DEL, line and paragraph separators, bidi controls.
const REMOVED = /[\u0000-\u001f\u007f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** As UTF-8 carries it: a lone surrogate (JSON's `\udc00` makes one) becomes U+FFFD. */
function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd');
}

/** `name` came out of cleanName(`from`, max). */
function checkClean(name: string, max: number, from?: string): void {
  expect(REMOVED.test(name), JSON.stringify(name)).toBe(false);
  expect(Array.from(name).length, 'at most `max` characters').toBeLessThanOrEqual(max);
  expect(name, 'no surrounding space').toBe(name.trim());
  if (from !== undefined && wellFormed(from) === from) {
    // Cutting never splits a character (what was whole stays whole).
    expect(wellFormed(name), 'no half of a character').toBe(name);
  }
}

/** A body's strings as UTF-8 carries them. */
function asSent(body: Body): Body {
  return JSON.parse(JSON.stringify(body, (_, v: unknown) => (typeof v === 'string' ? wellFormed(v) : v))) as Body;
}

function checkBody(body: Body, outcomes: Outcomes): void {
  expect(Number.isSafeInteger(body.sentAt) && body.sentAt >= 0).toBe(true);
  switch (body.type) {
    case 'profile':
      checkClean(body.name, MAX_NAME_CHARS);
      expect(body.name.length).toBeGreaterThan(0);
      expect(isBase64UrlOfLength(body.key, 32)).toBe(true);
      break;
    case 'text':
      expect(body.text.length).toBeLessThanOrEqual(MAX_TEXT_CHARS);
      if (body.quote !== undefined) expect(body.quote.length).toBeLessThanOrEqual(MAX_QUOTE_CHARS);
      if (body.replyTo !== undefined) expect(isBase64UrlOfLength(body.replyTo.key, 32) && Number.isSafeInteger(body.replyTo.sentAt)).toBe(true);
      break;
    case 'reaction':
      expect(isEmojiLike(body.emoji) && typeof body.add === 'boolean').toBe(true);
      expect(isBase64UrlOfLength(body.to.key, 32)).toBe(true);
      break;
    case 'edit':
      expect(body.text.length).toBeLessThanOrEqual(MAX_TEXT_CHARS);
      expect(isBase64UrlOfLength(body.to.key, 32)).toBe(true);
      break;
    case 'delete':
      expect(isBase64UrlOfLength(body.to.key, 32) && Number.isSafeInteger(body.to.sentAt)).toBe(true);
      break;
    case 'file':
      expect(/^[A-Za-z0-9_-]{16}$/.test(body.id)).toBe(true);
      checkClean(body.name, 255);
      expect(body.name.length > 0 && !/[/\\]/.test(body.name)).toBe(true);
      expect(body.mime === 'application/octet-stream' || /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(body.mime)).toBe(true);
      expect(body.chunkSize > 0 && body.chunks === Math.max(1, Math.ceil(body.size / body.chunkSize))).toBe(true);
      expect(isBase64UrlOfLength(body.sha256, 32) && isBase64UrlOfLength(body.key, 32) && isBase64UrlOfLength(body.noncePrefix, 7)).toBe(true);
      break;
    case 'file-cancel':
      expect(/^[A-Za-z0-9_-]{16}$/.test(body.file)).toBe(true);
      break;
    case 'typing':
    case 'unknown':
      break;
  }
  if (body.type !== 'unknown') {
    // What the client writes reads back as itself: cleaning is done once and for all.
    expect(decodeBody(encodeBody(body))).toEqual(asSent(body));
  }
  outcomes.hit(`body:${body.type}`);
}

function runText(text: string, outcomes: Outcomes): void {
  const bytes = fromBase64Url(text);
  if (bytes !== null) {
    expect(toBase64Url(bytes), 'one encoding per byte string').toBe(text);
    outcomes.hit('base64url');
  }
  const secret = secretFromFragment(text);
  if (secret !== null) {
    expect(secret.length).toBe(32);
    expect(secretToFragment(secret)).toBe(text.startsWith('#') ? text.slice(1) : text);
    outcomes.hit('fragment');
  }
  // TextDecoder drops one leading byte order mark, as WHATWG decoding does.
  expect(fromUtf8(utf8(text))).toBe(wellFormed(text).replace(/^\ufeff/, ''));
  const segments = linkSegments(text);
  expect(segments.map((s) => s.text).join(''), 'links cut nothing out').toBe(text);
  for (const segment of segments) {
    expect(segment.text.length).toBeGreaterThan(0);
    if (segment.kind === 'link') {
      expect(segment.href).toBe(segment.text);
      expect(['http:', 'https:']).toContain(new URL(segment.href).protocol);
      outcomes.hit('link');
    }
  }
  const name = cleanName(text);
  checkClean(name, MAX_NAME_CHARS, text);
  if (name.length > 0) outcomes.hit('name');
}

function runBytes(bytes: Uint8Array, outcomes: Outcomes): void {
  const text = fromUtf8(bytes);
  if (text !== null) expect(utf8(text)).toEqual(bytes);
  const body = decodeBody(bytes);
  if (body !== null) checkBody(body, outcomes);
}

it('web_content', async () => {
  const input = fc.oneof(
    bytesFrom(BODIES.map(utf8)).map((bytes) => ({ bytes })),
    textFrom(TEXTS).map((text) => ({ text })),
  );
  await fuzz({
    name: 'web_content',
    input,
    run: (i, outcomes) => ('bytes' in i ? runBytes(i.bytes, outcomes) : runText(i.text, outcomes)),
    mustReach: [
      'body:profile', 'body:text', 'body:typing', 'body:file', 'body:file-cancel', 'body:unknown',
      'base64url', 'fragment', 'link', 'name',
    ],
  });
}, TEST_TIMEOUT_MS);
