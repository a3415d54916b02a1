// web_protocol: every parser of server payloads in src/protocol.ts, on the values
// socket.io-client hands over (JSON, with binary attachments as ArrayBuffer or a view).
// The server is untrusted: a parser returns null or an error ack, never throws, and what
// it accepts is well-formed, whatever the input (a server time, for one, is one the UI
// can show: a Date holds it).
import { expect, it } from 'vitest';
import {
  ERROR_CODES, LEAVE_REASONS, type Ack, isMemberId, isRoomId, isTimestamp, parseIncomingChunk, parseIncomingMsg,
  parseJoinAck, parseMsgAck, parseNotice, parseOkAck, parsePresence, parseResumeAck, type ErrorAck, type Limits,
  type LogSession, type Missed,
} from '../src/protocol';
import { TEST_TIMEOUT_MS, fuzz, valueFrom, type Outcomes } from './harness';

const ROOM = 'omSJoNPRAws3-XOnTkTuRw';
const ADA = 'Xa9_kLm2-QrS4tUv6wYz';
const ME = 'selfSocketId00000001';
const LIMITS = { max_message_bytes: 65536, max_chunk_bytes: 1048576, max_file_chunks: 256, max_file_bytes: 268435456, max_members_per_room: 1000 };
const DATA = new Uint8Array([1, 2, 3, 255]);

const SEEDS: unknown[] = [
  { kind: 'join', room: ROOM, member: ADA, at: 1767225600000, profile: 'cHJvZmlsZQ', pos: 1 },
  { kind: 'leave', room: ROOM, member: ADA, at: 1767225600000, reason: 'timeout', pos: 2 },
  { kind: 'away', room: ROOM, member: ADA, at: 1767225600000, pos: 3 },
  { kind: 'back', room: ROOM, member: ADA, at: 1767225600000 },
  { room: ROOM, from: ADA, ts: 1767225600000, data: DATA, pos: 4 },
  { room: ROOM, from: ADA, ts: 1767225600000, data: DATA.buffer.slice(0), to: ME, pos: 5 },
  { room: ROOM, from: ADA, file: '0123456789abcdef', seq: 7, data: DATA, pos: 6 },
  { code: 'shutting_down', message: 'the server is restarting' },
  {
    ok: true, member: ME, at: 1767225600000, limits: LIMITS, epoch: '9f8e7d6c5b4a3921', pos: 3, token: 'dG9rZW4',
    grace_ms: 20000, window_ms: 60000, missed: { messages: 2, exact: true },
    members: [{ member: ADA, at: 1767225500000, profile: 'cHJvZmlsZQ' }, { member: 'b0Bs0cketId_-123456A', at: 1, profile: 'eA' }],
  },
  {
    ok: true, member: ME, at: 1767225600000, token: 'dG9rZW4', epoch: '9f8e7d6c5b4a3921', pos: 9, replayed: 3,
    missed: { messages: 0, exact: false }, limits: LIMITS,
  },
  { ok: true, ts: 1767225600000, pos: 4, duplicate: true },
  { ok: true, ts: 8_640_000_000_000_000, pos: 4 },
  { ok: true },
  { ok: false, error: { code: 'rate_limited', message: 'slow down', retry_ms: 1500 } },
  { ok: false, error: { code: 'resume_failed', message: 'no such session' } },
  { ok: false, error: { code: 'not_a_code', message: 'x'.repeat(600) } },
];

const KEYS = [
  'kind', 'room', 'member', 'at', 'profile', 'pos', 'reason', 'from', 'ts', 'data', 'to', 'file', 'seq', 'code', 'message',
  'ok', 'limits', 'epoch', 'token', 'grace_ms', 'window_ms', 'missed', 'members', 'replayed', 'duplicate', 'error',
  'retry_ms', 'retry_after_ms', 'messages', 'exact',
];

const count = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** A server time the client can show: a Date holds it (the UI formats every one). */
function showable(ts: number): boolean {
  return !Number.isNaN(new Date(ts).getTime());
}

function checkError(ack: ErrorAck, input: unknown): void {
  expect([...ERROR_CODES, 'unknown']).toContain(ack.code);
  expect(ack.message.length).toBeGreaterThan(0);
  expect(ack.message.length).toBeLessThanOrEqual(500);
  if (ack.retryMs !== undefined) expect(count(ack.retryMs) && ack.retryMs <= 60_000).toBe(true);
  // Only an answer that says ok is taken as a success; anything else is an error.
  expect((input as { ok?: unknown } | null)?.ok === true && ack.code !== 'unknown').toBe(false);
}

function checkLimits(limits: Limits | null): void {
  if (limits !== null) for (const v of Object.values(limits)) expect(count(v)).toBe(true);
}

function checkSession(session: LogSession | null): void {
  if (session === null) return;
  expect(session.epoch.length >= 1 && session.epoch.length <= 128).toBe(true);
  expect(/^[A-Za-z0-9_-]{1,256}$/.test(session.token)).toBe(true);
  expect(count(session.pos)).toBe(true);
}

function checkMissed(missed: Missed | null): void {
  if (missed !== null) expect(count(missed.messages) && typeof missed.exact === 'boolean').toBe(true);
}

function ack<T>(name: string, result: Ack<T>, input: unknown, outcomes: Outcomes, check: (value: T) => void): void {
  if (result.ok) {
    expect((input as { ok?: unknown }).ok).toBe(true);
    check(result.value);
    outcomes.hit(`${name}:ok`);
  } else {
    checkError(result, input);
    outcomes.hit(`${name}:${result.code}`);
  }
}

function run(input: unknown, outcomes: Outcomes): void {
  const presence = parsePresence(input);
  if (presence !== null) {
    expect(isRoomId(presence.room) && isMemberId(presence.member) && isTimestamp(presence.at) && count(presence.pos)).toBe(true);
    expect(showable(presence.at)).toBe(true);
    if (presence.kind === 'join') expect(/^[A-Za-z0-9_-]+$/.test(presence.profile)).toBe(true);
    if (presence.kind === 'leave') expect([...LEAVE_REASONS, 'unknown']).toContain(presence.reason);
    outcomes.hit(`presence:${presence.kind}`);
  }
  const msg = parseIncomingMsg(input);
  if (msg !== null) {
    expect(isRoomId(msg.room) && isMemberId(msg.from) && isTimestamp(msg.ts) && count(msg.pos)).toBe(true);
    expect(showable(msg.ts)).toBe(true);
    expect(msg.to === null || isMemberId(msg.to)).toBe(true);
    expect(msg.data).toBeInstanceOf(Uint8Array);
    // A copy: the bytes kept are not the caller's buffer.
    const raw = (input as { data: ArrayBuffer | ArrayBufferView }).data;
    const source = raw instanceof ArrayBuffer ? raw : raw.buffer;
    expect(msg.data.buffer).not.toBe(source);
    outcomes.hit(msg.to === null ? 'msg' : 'msg:direct');
  }
  const chunk = parseIncomingChunk(input);
  if (chunk !== null) {
    expect(isRoomId(chunk.room) && isMemberId(chunk.from) && /^[A-Za-z0-9_-]{16}$/.test(chunk.file)).toBe(true);
    expect(count(chunk.seq) && chunk.seq <= 0xffffffff && count(chunk.pos)).toBe(true);
    outcomes.hit('chunk');
  }
  const notice = parseNotice(input);
  if (notice !== null) {
    expect(notice.code.length >= 1 && notice.code.length <= 64 && notice.message.length <= 500).toBe(true);
    outcomes.hit('notice');
  }
  ack('joinAck', parseJoinAck(input), input, outcomes, (v) => {
    expect(isMemberId(v.member) && isTimestamp(v.at) && count(v.graceMs) && count(v.windowMs)).toBe(true);
    expect(showable(v.at)).toBe(true);
    for (const m of v.members) {
      expect(isMemberId(m.member) && isTimestamp(m.at) && /^[A-Za-z0-9_-]+$/.test(m.profile)).toBe(true);
      expect(showable(m.at)).toBe(true);
      expect(m.member).not.toBe(v.member);
    }
    checkLimits(v.limits);
    checkSession(v.session);
    checkMissed(v.missed);
  });
  ack('resumeAck', parseResumeAck(input), input, outcomes, (v) => {
    expect(isMemberId(v.member) && isTimestamp(v.at) && count(v.replayed) && showable(v.at)).toBe(true);
    checkSession(v.session);
    checkLimits(v.limits);
    checkMissed(v.missed);
  });
  ack('msgAck', parseMsgAck(input), input, outcomes, (v) => {
    expect(isTimestamp(v.ts) && showable(v.ts) && count(v.pos) && typeof v.duplicate === 'boolean').toBe(true);
  });
  ack('okAck', parseOkAck(input), input, outcomes, () => {});
}

it('web_protocol', async () => {
  await fuzz({
    name: 'web_protocol',
    input: valueFrom(SEEDS, KEYS),
    run,
    mustReach: [
      'presence:join', 'presence:leave', 'presence:away', 'presence:back', 'msg', 'msg:direct', 'chunk', 'notice',
      'joinAck:ok', 'resumeAck:ok', 'msgAck:ok', 'okAck:ok', 'okAck:rate_limited', 'okAck:unknown',
    ],
  });
}, TEST_TIMEOUT_MS);
