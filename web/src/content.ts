//! What is inside a sealed payload: the v1 body types of docs/crypto.md §8 (`profile`, `text`
//! with an optional reply, `file`, `file-cancel`, `typing`, `reaction`, `edit`, `delete`) as UTF-8 JSON, how the client writes them, and how it validates them
//! after decryption. A body from another member is untrusted input like any other:
//! unknown types and fields are ignored (forward compatibility), malformed ones refused.

import { type Bytes, fromUtf8, isBase64UrlOfLength, utf8 } from './encoding';
import { FILE_KEY_BYTES, NONCE_PREFIX_BYTES, PUBLIC_KEY_BYTES } from './crypto';
import { isFileId, isRecord } from './protocol';

export const MAX_NAME_CHARS = 64;
/** Longest text the composer accepts; the server's sealed message limit may be lower. */
export const MAX_TEXT_CHARS = 16_000;
/** The longest quote a reply carries, in UTF-16 code units. */
export const MAX_QUOTE_CHARS = 200;
/** The longest reaction, in UTF-8 bytes. */
export const MAX_EMOJI_BYTES = 32;
const MAX_FILE_NAME_CHARS = 255;
const MAX_MIME_CHARS = 127;

export interface ProfileBody { readonly type: 'profile'; readonly name: string; readonly key: string; readonly sentAt: number }
/**
 * Names one message of the room: the public key that signed it (base64url) and its body's
 * `sent_at`. Signed inside the body that refers to it, so the server can neither forge nor
 * redirect it; only bodies signed by `key` may edit or delete the message.
 */
export interface MessageRef { readonly key: string; readonly sentAt: number }
export interface TextBody {
  readonly type: 'text'; readonly text: string; readonly sentAt: number;
  /** The message this one answers, and the start of it as the sender saw it. */
  readonly replyTo?: MessageRef; readonly quote?: string;
}
/** An emoji on a message (`add`), or taking one's own back. */
export interface ReactionBody { readonly type: 'reaction'; readonly to: MessageRef; readonly emoji: string; readonly add: boolean; readonly sentAt: number }
/** The author's new text for their message `to`. */
export interface EditBody { readonly type: 'edit'; readonly to: MessageRef; readonly text: string; readonly sentAt: number }
/** The author took their message `to` back. */
export interface DeleteBody { readonly type: 'delete'; readonly to: MessageRef; readonly sentAt: number }
export interface TypingBody { readonly type: 'typing'; readonly sentAt: number }
export interface FileBody {
  readonly type: 'file';
  readonly id: string;
  readonly name: string;
  readonly mime: string;
  readonly size: number;
  readonly chunkSize: number;
  readonly chunks: number;
  readonly sha256: string;
  readonly key: string;
  readonly noncePrefix: string;
  readonly sentAt: number;
}
/** The sender stopped sending its file `file` (the id of its `file` body): no more chunks will come. */
export interface FileCancelBody { readonly type: 'file-cancel'; readonly file: string; readonly sentAt: number }
/** A well-formed body of a type this client does not know: ignored. */
export interface UnknownBody { readonly type: 'unknown'; readonly sentAt: number }

export type Body = ProfileBody | TextBody | TypingBody | FileBody | FileCancelBody | ReactionBody | EditBody | DeleteBody | UnknownBody;

/** Removes control and bidi-override characters and surrounding space from a name, and bounds its length. */
export function cleanName(name: string, maxChars: number = MAX_NAME_CHARS): string {
  const cleaned = name.replace(/[\u0000-\u001f\u007f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, '').trim();
  // Whole characters (never half of a surrogate pair), as the Rust client counts them;
  // the cut may end on a space, which goes too.
  return Array.from(cleaned).slice(0, maxChars).join('').trimEnd();
}

/** `text` cut to at most `max` UTF-16 code units between whole characters (how a reply's quote is cut). */
export function cutQuote(text: string, max: number = MAX_QUOTE_CHARS): string {
  let out = '';
  for (const c of text) {
    if (out.length + c.length > max) break;
    out += c;
  }
  return out;
}

/**
 * Whether `emoji` can be a reaction: 1 to 32 bytes of UTF-8, no whitespace, control,
 * U+FEFF or bidi control characters (the Rust client's `is_emoji_like`).
 */
export function isEmojiLike(emoji: string): boolean {
  const bytes = utf8(emoji).length;
  return bytes > 0 && bytes <= MAX_EMOJI_BYTES && !/[\s\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/u.test(emoji);
}

const refJson = (ref: MessageRef) => ({ key: ref.key, sent_at: ref.sentAt });

export function encodeBody(body: ProfileBody | TextBody | TypingBody | FileBody | FileCancelBody | ReactionBody | EditBody | DeleteBody): Bytes {
  switch (body.type) {
    case 'profile':
      return utf8(JSON.stringify({ type: 'profile', name: body.name, key: body.key, sent_at: body.sentAt }));
    case 'text':
      return utf8(JSON.stringify(body.replyTo === undefined
        ? { type: 'text', text: body.text, sent_at: body.sentAt }
        : { type: 'text', text: body.text, reply_to: refJson(body.replyTo), quote: body.quote, sent_at: body.sentAt }));
    case 'reaction':
      return utf8(JSON.stringify({ type: 'reaction', to: refJson(body.to), emoji: body.emoji, add: body.add, sent_at: body.sentAt }));
    case 'edit':
      return utf8(JSON.stringify({ type: 'edit', to: refJson(body.to), text: body.text, sent_at: body.sentAt }));
    case 'delete':
      return utf8(JSON.stringify({ type: 'delete', to: refJson(body.to), sent_at: body.sentAt }));
    case 'typing':
      return utf8(JSON.stringify({ type: 'typing', sent_at: body.sentAt }));
    case 'file':
      return utf8(JSON.stringify({
        type: 'file', id: body.id, name: body.name, mime: body.mime, size: body.size,
        chunk_size: body.chunkSize, chunks: body.chunks, sha256: body.sha256, key: body.key,
        nonce_prefix: body.noncePrefix, sent_at: body.sentAt,
      }));
    case 'file-cancel':
      return utf8(JSON.stringify({ type: 'file-cancel', file: body.file, sent_at: body.sentAt }));
  }
}

function isSentAt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Decodes and validates a body; null when it is not a well-formed v1 body. */
export function decodeBody(bytes: Uint8Array): Body | null {
  const text = fromUtf8(bytes);
  if (text === null) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e: unknown) {
    if (e instanceof SyntaxError) return null;
    throw e;
  }
  if (!isRecord(value) || typeof value.type !== 'string' || !isSentAt(value.sent_at)) return null;
  const sentAt = value.sent_at;
  switch (value.type) {
    case 'profile': {
      const { name, key } = value;
      if (typeof name !== 'string' || !isBase64UrlOfLength(key, PUBLIC_KEY_BYTES)) return null;
      const clean = cleanName(name);
      return clean.length === 0 ? null : { type: 'profile', name: clean, key, sentAt };
    }
    case 'text': {
      const { text: message, reply_to: replyTo, quote } = value;
      if (typeof message !== 'string' || message.length > MAX_TEXT_CHARS) return null;
      if (replyTo === undefined && quote === undefined) return { type: 'text', text: message, sentAt };
      const to = replyTo === undefined ? undefined : decodeRef(replyTo);
      if (to === null) return null;
      if (quote !== undefined && (typeof quote !== 'string' || quote.length > MAX_QUOTE_CHARS)) return null;
      // A quote without a reply_to is an unknown extra: ignored.
      if (to === undefined) return { type: 'text', text: message, sentAt };
      return quote === undefined ? { type: 'text', text: message, sentAt, replyTo: to } : { type: 'text', text: message, sentAt, replyTo: to, quote };
    }
    case 'reaction': {
      const to = decodeRef(value.to);
      const { emoji, add } = value;
      if (to === null || typeof emoji !== 'string' || !isEmojiLike(emoji) || typeof add !== 'boolean') return null;
      return { type: 'reaction', to, emoji, add, sentAt };
    }
    case 'edit': {
      const to = decodeRef(value.to);
      const { text: message } = value;
      if (to === null || typeof message !== 'string' || message.length > MAX_TEXT_CHARS) return null;
      return { type: 'edit', to, text: message, sentAt };
    }
    case 'delete': {
      const to = decodeRef(value.to);
      return to === null ? null : { type: 'delete', to, sentAt };
    }
    case 'typing':
      return { type: 'typing', sentAt };
    case 'file':
      return decodeFileBody(value, sentAt);
    case 'file-cancel':
      return isFileId(value.file) ? { type: 'file-cancel', file: value.file, sentAt } : null;
    default:
      return { type: 'unknown', sentAt };
  }
}

function decodeRef(value: unknown): MessageRef | null {
  if (!isRecord(value) || !isBase64UrlOfLength(value.key, PUBLIC_KEY_BYTES) || !isSentAt(value.sent_at)) return null;
  return { key: value.key, sentAt: value.sent_at };
}

function decodeFileBody(value: Record<string, unknown>, sentAt: number): FileBody | null {
  const { id, name, mime, size, chunk_size: chunkSize, chunks, sha256, key, nonce_prefix: noncePrefix } = value;
  if (!isFileId(id) || typeof name !== 'string' || typeof mime !== 'string') return null;
  if (!isSize(size) || !isSize(chunkSize) || chunkSize === 0 || !isSize(chunks) || chunks === 0) return null;
  if (chunks !== Math.max(1, Math.ceil(size / chunkSize))) return null;
  if (!isBase64UrlOfLength(sha256, 32) || !isBase64UrlOfLength(key, FILE_KEY_BYTES)) return null;
  if (!isBase64UrlOfLength(noncePrefix, NONCE_PREFIX_BYTES)) return null;
  const cleanFileName = cleanName(name.replace(/[/\\]/g, '_'), MAX_FILE_NAME_CHARS) || 'file';
  const cleanMime = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i.test(mime) && mime.length <= MAX_MIME_CHARS
    ? mime.toLowerCase()
    : 'application/octet-stream';
  return { type: 'file', id, name: cleanFileName, mime: cleanMime, size, chunkSize, chunks, sha256, key, noncePrefix, sentAt };
}
