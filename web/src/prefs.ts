//! What this browser remembers, only when the person asks for it, in localStorage (never
//! sent anywhere): the name to join with, what desktop notifications show, and the keys
//! verified by comparing fingerprints. Every read tolerates storage that is missing,
//! disabled or holds something unexpected (it is then as if nothing were stored).

/** The part of `Storage` used here, so tests can pass a fake. */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const NAME_KEY = 'streamchat.name';
const NOTIFICATIONS_KEY = 'streamchat.notifications';
const VERIFIED_KEY = 'streamchat.verified';
/** Verified keys kept; the oldest go first. */
export const MAX_VERIFIED_KEYS = 500;

/** localStorage, or null where the browser refuses it (some private modes, sandboxed frames). */
export function browserStore(): KeyValueStore | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

function read(store: KeyValueStore | null, key: string): string | null {
  try {
    return store?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

/** Writes (or removes, for null); false if the browser refused. */
function write(store: KeyValueStore | null, key: string, value: string | null): boolean {
  if (store === null) return false;
  try {
    if (value === null) store.removeItem(key);
    else store.setItem(key, value);
    return true;
  } catch {
    return false;
  }
}

// ---- The name -------------------------------------------------------------------------

export function rememberedName(store: KeyValueStore | null = browserStore()): string | null {
  const name = read(store, NAME_KEY);
  return name !== null && name.trim().length > 0 ? name : null;
}

/** Remembers `name` for the next visit, or forgets it (null). */
export function rememberName(name: string | null, store: KeyValueStore | null = browserStore()): boolean {
  return write(store, NAME_KEY, name);
}

// ---- Notifications --------------------------------------------------------------------

/** What a desktop notification shows: the message, only who wrote, or nothing about either. */
export type NotificationPrivacy = 'full' | 'name' | 'nothing';
export const NOTIFICATION_PRIVACY: readonly NotificationPrivacy[] = ['full', 'name', 'nothing'];
/**
 * Name only: a notification leaves the page (the system shows it on the lock screen and
 * to whoever looks at the screen, and may keep it in its notification history), so by
 * default it does not carry what was written.
 */
export const DEFAULT_NOTIFICATION_PRIVACY: NotificationPrivacy = 'name';

export function notificationPrivacy(store: KeyValueStore | null = browserStore()): NotificationPrivacy {
  const value = read(store, NOTIFICATIONS_KEY);
  return NOTIFICATION_PRIVACY.find((choice) => choice === value) ?? DEFAULT_NOTIFICATION_PRIVACY;
}

export function setNotificationPrivacy(choice: NotificationPrivacy, store: KeyValueStore | null = browserStore()): boolean {
  return write(store, NOTIFICATIONS_KEY, choice);
}

const NOTIFICATION_TEXT_CHARS = 120;

/** The title and body of the notification for a message from `from`. */
export function notificationContent(privacy: NotificationPrivacy, from: string, text: string): { title: string; body: string } {
  switch (privacy) {
    case 'full':
      return { title: `${from} — StreamChat`, body: text.length > NOTIFICATION_TEXT_CHARS ? `${text.slice(0, NOTIFICATION_TEXT_CHARS)}…` : text };
    case 'name':
      return { title: `${from} — StreamChat`, body: 'New message' };
    case 'nothing':
      return { title: 'StreamChat', body: 'New message' };
  }
}

// ---- Verified keys ----------------------------------------------------------------------

/** Keys this person marked as verified after comparing fingerprints, by identity public key. */
export interface VerifiedKeys {
  has(key: string): boolean;
  /** Marks `key` (whose holder is called `name`) verified, or not. */
  set(key: string, name: string, verified: boolean): void;
}

interface VerifiedEntry { readonly name: string; readonly at: number }

export function verifiedKeys(store: KeyValueStore | null = browserStore(), now: () => number = Date.now): VerifiedKeys {
  const load = (): Map<string, VerifiedEntry> => {
    const text = read(store, VERIFIED_KEY);
    if (text === null) return new Map();
    try {
      const value: unknown = JSON.parse(text);
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return new Map();
      const entries = Object.entries(value as Record<string, unknown>).filter((entry): entry is [string, VerifiedEntry] => {
        const v = entry[1];
        return typeof v === 'object' && v !== null && typeof (v as VerifiedEntry).name === 'string' && typeof (v as VerifiedEntry).at === 'number';
      });
      return new Map(entries.sort((a, b) => a[1].at - b[1].at));
    } catch {
      return new Map();
    }
  };
  // Without storage, verification lasts as long as the page.
  const memory = store === null ? new Map<string, VerifiedEntry>() : null;
  return {
    has: (key) => (memory ?? load()).has(key),
    set: (key, name, verified) => {
      const entries = memory ?? load();
      entries.delete(key);
      if (verified) entries.set(key, { name, at: now() });
      while (entries.size > MAX_VERIFIED_KEYS) {
        const oldest = entries.keys().next();
        if (oldest.done === true) break;
        entries.delete(oldest.value);
      }
      if (memory === null) write(store, VERIFIED_KEY, JSON.stringify(Object.fromEntries(entries)));
    },
  };
}
