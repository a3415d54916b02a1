//! The lobby bodies of a v2 room (docs/crypto.md §17.2): JSON, sealed with the lobby key.
//! Kept apart from lobby.ts so that a v1 page, which reads no lobby body but must tell
//! one apart, does not load the MLS engine (lobby.ts is loaded only for v2 rooms).

import { type Bytes, fromBase64Url, toBase64Url, utf8 } from './encoding';

export type LobbyBody =
  | { readonly type: 'genesis'; readonly sentAt: number }
  | { readonly type: 'knock'; readonly keyPackage: Bytes; readonly sentAt: number }
  | { readonly type: 'in'; readonly epoch: number; readonly sentAt: number };

const LOBBY_TYPES = new Set(['genesis', 'knock', 'in']);

export function encodeLobbyBody(body: LobbyBody): Bytes {
  switch (body.type) {
    case 'genesis':
      return utf8(JSON.stringify({ type: 'genesis', sent_at: body.sentAt }));
    case 'knock':
      return utf8(JSON.stringify({ type: 'knock', key_package: toBase64Url(body.keyPackage), sent_at: body.sentAt }));
    case 'in':
      return utf8(JSON.stringify({ type: 'in', epoch: body.epoch, sent_at: body.sentAt }));
  }
}

/**
 * A lobby body; `other` for valid JSON of another type (which belongs inside MLS, or is
 * a profile: dropped, §17.2), null if malformed.
 */
export function decodeLobbyBody(bytes: Uint8Array): LobbyBody | 'other' | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  const sentAt = record.sent_at;
  if (typeof record.type !== 'string' || typeof sentAt !== 'number' || !Number.isSafeInteger(sentAt) || sentAt < 0) return null;
  if (!LOBBY_TYPES.has(record.type)) return 'other';
  switch (record.type) {
    case 'genesis':
      return { type: 'genesis', sentAt };
    case 'knock': {
      const keyPackageBytes = typeof record.key_package === 'string' ? fromBase64Url(record.key_package) : null;
      return keyPackageBytes === null || keyPackageBytes.length === 0 ? null : { type: 'knock', keyPackage: keyPackageBytes, sentAt };
    }
    default: {
      const epoch = record.epoch;
      return typeof epoch === 'number' && Number.isSafeInteger(epoch) && epoch >= 0 ? { type: 'in', epoch, sentAt } : null;
    }
  }
}
