//! The wire contract of docs/protocol.md as the web client sees it: event names, payload
//! types, and a validator for every payload that arrives from the server. The server is
//! not trusted to send well-formed data, so nothing incoming is used before it passes a
//! parser here; a parser returns null (or an error ack) rather than throwing.

import { type Bytes, bytesFromBinary } from './encoding';

/** Every Socket.IO event name the client uses, in one table. */
export const EVENT = {
  join: 'join',
  resume: 'resume',
  leave: 'leave',
  msg: 'msg',
  chunk: 'chunk',
  presence: 'presence',
  notice: 'notice',
} as const;

export const ERROR_CODES = [
  'bad_request', 'not_member', 'too_large', 'rate_limited', 'room_full', 'too_many_rooms', 'unavailable', 'resume_failed',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export const LEAVE_REASONS = ['left', 'disconnected', 'timeout', 'server_restart'] as const;
export type LeaveReason = (typeof LEAVE_REASONS)[number];

/** Limits announced in the join ack (a project extension; absent from plain v1 servers). */
export interface Limits {
  readonly maxMessageBytes: number;
  readonly maxChunkBytes: number;
  readonly maxFileChunks: number;
  readonly maxFileBytes: number;
  readonly maxMembersPerRoom: number;
}

export interface PresentMember {
  readonly member: string;
  readonly at: number;
  /** A sealed profile as base64url; opened by the room module. */
  readonly profile: string;
}

/** How many messages a member could not get back after a gap (protocol v1.1). */
export interface Missed {
  readonly messages: number;
  /** False: at least `messages` (the gap reached past the server's window, or the room restarted). */
  readonly exact: boolean;
}

/**
 * Where a member stands in a room's log (protocol v1.1): the room's epoch, the position
 * of the last event seen, and the token that lets it resume. Absent from v1 servers.
 */
export interface LogSession {
  readonly epoch: string;
  readonly pos: number;
  readonly token: string;
}

export interface JoinAck {
  readonly member: string;
  readonly at: number;
  readonly members: readonly PresentMember[];
  readonly limits: Limits | null;
  /** Null from a server that does not resume sessions. */
  readonly session: LogSession | null;
  readonly graceMs: number;
  readonly windowMs: number;
  /** With `since`: what the joiner missed. */
  readonly missed: Missed | null;
}

export interface ResumeAck {
  readonly member: string;
  readonly at: number;
  readonly session: LogSession;
  /** Events replayed after the ack. */
  readonly replayed: number;
  /** What could not be replayed (the server's window lost part of the gap). */
  readonly missed: Missed | null;
  readonly limits: Limits | null;
}

export interface MsgAck {
  readonly ts: number;
  /** The message's place in the room's log (0 from a v1 server). */
  readonly pos: number;
  /** A resend of a message already relayed: not relayed again. */
  readonly duplicate: boolean;
}

/** Failures found by the client itself: not connected, or no acknowledgement in time. */
export type ClientErrorCode = 'offline' | 'timeout' | 'unknown';

export interface ErrorAck {
  readonly ok: false;
  readonly code: ErrorCode | ClientErrorCode;
  readonly message: string;
  /** A server's hint (ms) of when to try again, if it gave one. */
  readonly retryMs?: number;
}

export type Ack<T> = { readonly ok: true; readonly value: T } | ErrorAck;

/** Every room event carries `pos`, its place in the room's log (0 from a v1 server). */
export type Presence =
  | { readonly kind: 'join'; readonly room: string; readonly member: string; readonly at: number; readonly pos: number; readonly profile: string }
  | { readonly kind: 'leave'; readonly room: string; readonly member: string; readonly at: number; readonly pos: number; readonly reason: LeaveReason | 'unknown' }
  /** The member's connection dropped; it is reconnecting and still a member for the grace. */
  | { readonly kind: 'away'; readonly room: string; readonly member: string; readonly at: number; readonly pos: number }
  /** The member resumed: nobody left, nothing was missed. */
  | { readonly kind: 'back'; readonly room: string; readonly member: string; readonly at: number; readonly pos: number };

export interface IncomingMsg {
  readonly room: string;
  readonly from: string;
  readonly ts: number;
  readonly data: Bytes;
  /** Set on direct messages: the recipient (this connection). */
  readonly to: string | null;
  readonly pos: number;
}

export interface IncomingChunk {
  readonly room: string;
  readonly from: string;
  readonly file: string;
  readonly seq: number;
  readonly data: Bytes;
  readonly pos: number;
}

export interface Notice {
  readonly code: string;
  readonly message: string;
}

// ---- Outgoing payloads -----------------------------------------------------------------

export interface JoinRequest { readonly room: string; readonly profile: string; readonly since?: { readonly epoch: string; readonly pos: number } }
export interface ResumeRequest { readonly room: string; readonly member: string; readonly token: string; readonly epoch: string; readonly pos: number }
export interface LeaveRequest { readonly room: string }
export interface MsgRequest { readonly room: string; readonly data: Bytes; readonly to?: string; readonly id?: string }
export interface ChunkRequest { readonly room: string; readonly file: string; readonly seq: number; readonly data: Bytes }

// ---- Field checks ----------------------------------------------------------------------

const ROOM_ID = /^[A-Za-z0-9_-]{22}$/;
const FILE_ID = /^[A-Za-z0-9_-]{16}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
/** A client message id (protocol v1.1): 1–64 base64url characters. */
const MESSAGE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** Bounds on server-chosen opaque strings (epoch, resume token). */
const MAX_EPOCH_CHARS = 128;
const MAX_TOKEN_CHARS = 256;
/** Generous bound on a member id: the crypto layer allows 64 bytes of UTF-8. */
const MAX_MEMBER_CHARS = 64;
/** Bound on server-supplied human text (error and notice messages) that the UI may show. */
const MAX_SERVER_TEXT = 500;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isRoomId(value: unknown): value is string {
  return typeof value === 'string' && ROOM_ID.test(value);
}

export function isFileId(value: unknown): value is string {
  return typeof value === 'string' && FILE_ID.test(value);
}

export function isMemberId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_MEMBER_CHARS;
}

/** The latest time a Date holds (ms): a later one cannot be shown, and formatting it throws. */
const MAX_TIME_MS = 8_640_000_000_000_000;

/** A server time: non-negative integer milliseconds, within what a Date holds. */
export function isTimestamp(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= MAX_TIME_MS;
}

export function isMessageId(value: unknown): value is string {
  return typeof value === 'string' && MESSAGE_ID.test(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isSealedText(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && BASE64URL.test(value);
}

function serverText(value: unknown): string {
  return typeof value === 'string' ? value.slice(0, MAX_SERVER_TEXT) : '';
}

// ---- Parsers -----------------------------------------------------------------------------

/** Parses `{ok:false, error:{code, message}}`; anything that is not a success becomes an error ack. */
export function parseErrorAck(value: unknown): ErrorAck {
  const error = isRecord(value) && isRecord(value.error) ? value.error : {};
  const code = ERROR_CODES.find((known) => known === error.code) ?? 'unknown';
  const message = serverText(error.message) || (code === 'unknown' ? 'the server gave an unexpected answer' : code);
  const retry = [error.retry_ms, error.retry_after_ms].find(isCount);
  return retry === undefined ? { ok: false, code, message } : { ok: false, code, message, retryMs: Math.min(retry, 60_000) };
}

/** A position field: absent (a v1 server) reads as 0. */
function posOf(value: unknown): number {
  return isCount(value) ? value : 0;
}

function parseMissed(value: unknown): Missed | null {
  if (!isRecord(value) || !isCount(value.messages) || typeof value.exact !== 'boolean') return null;
  return { messages: value.messages, exact: value.exact };
}

function parseLogSession(value: Record<string, unknown>): LogSession | null {
  const { epoch, pos, token } = value;
  if (typeof epoch !== 'string' || epoch.length === 0 || epoch.length > MAX_EPOCH_CHARS) return null;
  if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_CHARS || !BASE64URL.test(token)) return null;
  if (!isCount(pos)) return null;
  return { epoch, pos, token };
}

function parseLimits(value: unknown): Limits | null {
  if (!isRecord(value)) return null;
  const fields = [value.max_message_bytes, value.max_chunk_bytes, value.max_file_chunks, value.max_file_bytes, value.max_members_per_room];
  if (!fields.every(isCount)) return null;
  const [maxMessageBytes, maxChunkBytes, maxFileChunks, maxFileBytes, maxMembersPerRoom] = fields as number[];
  return {
    maxMessageBytes: maxMessageBytes ?? 0,
    maxChunkBytes: maxChunkBytes ?? 0,
    maxFileChunks: maxFileChunks ?? 0,
    maxFileBytes: maxFileBytes ?? 0,
    maxMembersPerRoom: maxMembersPerRoom ?? 0,
  };
}

function parsePresentMember(value: unknown): PresentMember | null {
  if (!isRecord(value)) return null;
  const { member, at, profile } = value;
  if (!isMemberId(member) || !isTimestamp(at) || !isSealedText(profile)) return null;
  return { member, at, profile };
}

export function parseJoinAck(value: unknown): Ack<JoinAck> {
  if (!isRecord(value) || value.ok !== true) return parseErrorAck(value);
  const { member, at, members } = value;
  if (!isMemberId(member) || !isTimestamp(at) || !Array.isArray(members)) return malformed('join');
  const parsed: PresentMember[] = [];
  for (const item of members) {
    const present = parsePresentMember(item);
    // One malformed entry is skipped rather than failing the join: the room still works.
    if (present !== null && present.member !== member) parsed.push(present);
  }
  return {
    ok: true,
    value: {
      member, at, members: parsed, limits: parseLimits(value.limits),
      session: parseLogSession(value),
      graceMs: isCount(value.grace_ms) ? value.grace_ms : 0,
      windowMs: isCount(value.window_ms) ? value.window_ms : 0,
      missed: parseMissed(value.missed),
    },
  };
}

/** `resume` ack: `{ok:true, member, at, token, epoch, pos, replayed, missed?, limits}`. */
export function parseResumeAck(value: unknown): Ack<ResumeAck> {
  if (!isRecord(value) || value.ok !== true) return parseErrorAck(value);
  const { member, at, replayed } = value;
  const session = parseLogSession(value);
  if (!isMemberId(member) || !isTimestamp(at) || session === null) return malformed('resume');
  return {
    ok: true,
    value: {
      member, at, session, replayed: isCount(replayed) ? replayed : 0, missed: parseMissed(value.missed), limits: parseLimits(value.limits),
    },
  };
}

/** `msg` ack: `{ok:true, ts, pos?, duplicate?}`. */
export function parseMsgAck(value: unknown): Ack<MsgAck> {
  if (!isRecord(value) || value.ok !== true) return parseErrorAck(value);
  return isTimestamp(value.ts)
    ? { ok: true, value: { ts: value.ts, pos: posOf(value.pos), duplicate: value.duplicate === true } }
    : malformed('msg');
}

/** `leave` and `chunk` acks: `{ok:true}`. */
export function parseOkAck(value: unknown): Ack<null> {
  if (!isRecord(value) || value.ok !== true) return parseErrorAck(value);
  return { ok: true, value: null };
}

function malformed(event: string): ErrorAck {
  return { ok: false, code: 'unknown', message: `malformed ${event} acknowledgement` };
}

export function parsePresence(value: unknown): Presence | null {
  if (!isRecord(value)) return null;
  const { room, kind, member, at } = value;
  if (!isRoomId(room) || !isMemberId(member) || !isTimestamp(at)) return null;
  const pos = posOf(value.pos);
  if (kind === 'join') {
    return isSealedText(value.profile) ? { kind, room, member, at, pos, profile: value.profile } : null;
  }
  if (kind === 'leave') {
    const reason = LEAVE_REASONS.find((known) => known === value.reason) ?? 'unknown';
    return { kind, room, member, at, pos, reason };
  }
  if (kind === 'away' || kind === 'back') return { kind, room, member, at, pos };
  return null;
}

export function parseIncomingMsg(value: unknown): IncomingMsg | null {
  if (!isRecord(value)) return null;
  const { room, from, ts, to } = value;
  const data = bytesFromBinary(value.data);
  if (!isRoomId(room) || !isMemberId(from) || !isTimestamp(ts) || data === null) return null;
  if (to !== undefined && to !== null && !isMemberId(to)) return null;
  return { room, from, ts, data, to: isMemberId(to) ? to : null, pos: posOf(value.pos) };
}

export function parseIncomingChunk(value: unknown): IncomingChunk | null {
  if (!isRecord(value)) return null;
  const { room, from, file, seq } = value;
  const data = bytesFromBinary(value.data);
  if (!isRoomId(room) || !isMemberId(from) || !isFileId(file) || !isCount(seq) || seq > 0xffffffff || data === null) return null;
  return { room, from, file, seq, data, pos: posOf(value.pos) };
}

export function parseNotice(value: unknown): Notice | null {
  if (!isRecord(value) || typeof value.code !== 'string' || value.code.length === 0 || value.code.length > 64) return null;
  return { code: value.code, message: serverText(value.message) };
}
