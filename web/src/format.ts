//! Words and numbers as people read them: server times in the reader's time zone
//! ("14:30:45" and "2026-11-29"), the presence alerts in the original StreamChat's form
//! ("Alice joined the chat at 14:30:45 on 2026-11-29"), fingerprints, sizes and the
//! tab title. Pure functions, so the tests can pin every string.

import type { ConnectionState } from './connection';
import type { ErrorAck, LeaveReason, Missed } from './protocol';

export interface Clock {
  /** `HH:MM:SS`, 24-hour. */
  readonly time: string;
  /** `YYYY-MM-DD`. */
  readonly date: string;
  /** ISO 8601 in UTC, for `<time datetime>`. */
  readonly iso: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string | undefined): Intl.DateTimeFormat {
  const cacheKey = timeZone ?? '';
  let formatter = formatters.get(cacheKey);
  if (formatter === undefined) {
    formatter = new Intl.DateTimeFormat('en-US', {
      ...(timeZone === undefined ? {} : { timeZone }),
      year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    });
    formatters.set(cacheKey, formatter);
  }
  return formatter;
}

/** A server timestamp (Unix ms) as time and date in `timeZone` (default: the reader's). */
export function clock(ts: number, timeZone?: string): Clock {
  const date = new Date(ts);
  const parts = new Map(formatterFor(timeZone).formatToParts(date).map((part) => [part.type, part.value]));
  const get = (type: Intl.DateTimeFormatPartTypes): string => parts.get(type) ?? '00';
  return {
    time: `${get('hour')}:${get('minute')}:${get('second')}`,
    date: `${get('year').padStart(4, '0')}-${get('month')}-${get('day')}`,
    iso: date.toISOString(),
  };
}

/** "14:30:45 on 2026-11-29" */
export function atTime(ts: number, timeZone?: string): string {
  const { time, date } = clock(ts, timeZone);
  return `${time} on ${date}`;
}

export type PresenceAlert =
  | { readonly kind: 'join'; readonly name: string; readonly at: number }
  | { readonly kind: 'rejoin'; readonly name: string; readonly at: number }
  | { readonly kind: 'leave'; readonly name: string; readonly at: number; readonly reason: LeaveReason | 'unknown' }
  | { readonly kind: 'self-join'; readonly at: number }
  | { readonly kind: 'self-rejoin'; readonly at: number }
  /** Back as the same member after a dropped connection: nothing lost. */
  | { readonly kind: 'self-resume'; readonly at: number };

const REASON_TEXT: Readonly<Record<LeaveReason | 'unknown', string>> = {
  left: '',
  disconnected: ' (disconnected)',
  timeout: ' (timed out)',
  server_restart: ' (server restart)',
  unknown: '',
};

/** "Alice joined the chat at 14:30:45 on 2026-11-29", "Alice left the chat at … (timed out)". */
export function presenceAlertText(alert: PresenceAlert, timeZone?: string): string {
  const when = atTime(alert.at, timeZone);
  switch (alert.kind) {
    case 'join':
      return `${alert.name} joined the chat at ${when}`;
    case 'rejoin':
      return `${alert.name} rejoined the chat at ${when}`;
    case 'leave':
      return `${alert.name} left the chat at ${when}${REASON_TEXT[alert.reason]}`;
    case 'self-join':
      return `You joined the chat at ${when}`;
    case 'self-rejoin':
      return `You rejoined the chat at ${when}`;
    case 'self-resume':
      return `You reconnected at ${when}`;
  }
}

/** 45 000 → "45 seconds", 180 000 → "3 minutes", 7 200 000 → "2 hours". */
export function durationText(ms: number): string {
  const seconds = Math.max(1, Math.round(ms / 1000));
  if (seconds < 60) return plural(seconds, 'second');
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return plural(minutes, 'minute');
  return plural(Math.round(minutes / 60), 'hour');
}

function plural(count: number, unit: string): string {
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}

/**
 * The one line after a gap that could not be replayed: "You were offline for 3 minutes:
 * 41 messages could not be recovered" ("at least 41" when the server could not count them
 * all, as after a restart).
 */
export function gapText(offlineMs: number, missed: Missed, serverRestarted: boolean): string {
  const offline = `You were offline for ${durationText(offlineMs)}`;
  const restart = serverRestarted ? ' (the server restarted)' : '';
  if (missed.messages > 0) {
    const count = `${missed.exact ? '' : 'at least '}${plural(missed.messages, 'message')}`;
    return `${offline}: ${count} could not be recovered${restart}`;
  }
  if (missed.exact) return `${offline}; nothing was missed`;
  return `${offline}: messages sent meanwhile could not be recovered${restart}`;
}

/** The first two groups of a fingerprint, for the badge beside a message. */
export function shortFingerprint(fingerprint: string): string {
  return fingerprint.split(' ').slice(0, 2).join(' ');
}

/** "Bob is typing…", "Bob and Carol are typing…", "3 people are typing…" */
export function typingText(names: readonly string[]): string {
  if (names.length === 0) return '';
  if (names.length === 1) return `${names[0] ?? ''} is typing…`;
  if (names.length === 2) return `${names[0] ?? ''} and ${names[1] ?? ''} are typing…`;
  return `${names.length} people are typing…`;
}

/** "(3) StreamChat" while there are unread messages, else "StreamChat". */
export function tabTitle(unread: number, base = 'StreamChat'): string {
  return unread > 0 ? `(${unread > 99 ? '99+' : unread}) ${base}` : base;
}

/** 1536 → "1.5 KiB" */
export function byteSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 ? value.toFixed(0) : value.toFixed(1)} ${units[unit] ?? 'TiB'}`;
}

export type TextSegment = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'link'; readonly text: string; readonly href: string };

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING_PUNCTUATION = /[.,;:!?)\]}'"]+$/;

/**
 * Splits a message into plain text and http(s) links. Links become elements that open
 * only on a click: nothing is fetched to preview them (a preview would tell the linked
 * server who is reading).
 */
export function linkSegments(text: string): TextSegment[] {
  const segments: TextSegment[] = [];
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const raw = match[0];
    const url = raw.replace(TRAILING_PUNCTUATION, '');
    const start = match.index;
    if (url.length <= 'https://'.length || !isHttpUrl(url)) continue;
    if (start > last) segments.push({ kind: 'text', text: text.slice(last, start) });
    segments.push({ kind: 'link', text: url, href: url });
    last = start + url.length;
  }
  if (last < text.length) segments.push({ kind: 'text', text: text.slice(last) });
  return segments;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch (e: unknown) {
    if (e instanceof TypeError) return false;
    throw e;
  }
}

export interface StatusText {
  readonly label: string;
  readonly tone: 'ok' | 'busy' | 'bad';
}

/** The connection state in a few words, for the status pill. */
export function connectionStatusText(state: ConnectionState): StatusText {
  switch (state.kind) {
    case 'connecting':
      return { label: 'Connecting…', tone: 'busy' };
    case 'joining':
      return { label: 'Joining…', tone: 'busy' };
    case 'online':
      return { label: 'Connected', tone: 'ok' };
    case 'offline': {
      const why = state.cause === 'server_restart' ? 'server restarting'
        : state.cause === 'refused_at_connect' ? 'too many connections'
        : state.cause === 'join_failed' ? `could not join: ${state.detail}`
        : 'connection lost';
      return { label: `Offline (${why}), reconnecting…`, tone: 'bad' };
    }
    case 'refused':
      return { label: `Cannot join: ${refusalText(state.code, state.message)}`, tone: 'bad' };
    case 'closed':
      return { label: 'Left the room', tone: 'bad' };
  }
}

function refusalText(code: string, message: string): string {
  switch (code) {
    case 'room_full':
      return 'the room is full';
    case 'too_many_rooms':
      return 'this connection is in too many rooms';
    case 'too_large':
      return 'your name is too long for this server';
    default:
      return message || code;
  }
}

/** Why a message was not sent, in words. */
export function failureText(ack: ErrorAck): string {
  switch (ack.code) {
    case 'too_large':
      return 'too large for this server';
    case 'rate_limited':
      return 'sending too fast; try again in a moment';
    case 'timeout':
      return 'no answer from the server; it may not have been delivered';
    case 'offline':
      return 'not connected';
    case 'not_member':
      return 'not in the room any more';
    default:
      return ack.message;
  }
}

/** A piece of a line of text: plain text, or a person's name (shown bidi-isolated). */
export type NamedSegment = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'name'; readonly text: string };

/**
 * Splits `text` into plain text and the `names` in it (each name's first occurrence after
 * the previous one, in the order given), so that the UI can isolate each name: a Hebrew or
 * Arabic name must not reorder the words around it ("שרה joined the chat at …").
 */
export function nameSegments(text: string, names: readonly string[]): NamedSegment[] {
  const segments: NamedSegment[] = [];
  let rest = 0;
  for (const name of names) {
    if (name.length === 0) continue;
    const at = text.indexOf(name, rest);
    if (at < 0) continue;
    if (at > rest) segments.push({ kind: 'text', text: text.slice(rest, at) });
    segments.push({ kind: 'name', text: name });
    rest = at + name.length;
  }
  if (rest < text.length) segments.push({ kind: 'text', text: text.slice(rest) });
  return segments;
}

/**
 * Why a text cannot be sent as it is, or null when it can: "This message is 20,000
 * characters long; the limit is 16,000. Shorten it or split it into several messages."
 * Counted in UTF-16 code units, as the limit is (`MAX_TEXT_CHARS`).
 */
export function textTooLongText(length: number, max: number): string | null {
  if (length <= max) return null;
  const n = (value: number): string => value.toLocaleString('en-US');
  return `Not sent: this message is ${n(length)} characters long; the limit is ${n(max)}. Shorten it or split it into several messages.`;
}
