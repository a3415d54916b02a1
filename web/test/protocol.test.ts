// Every payload the server sends is validated before use; these pin what is accepted.
import { describe, expect, it } from 'vitest';
import { fromBase64Url, toBase64Url } from '../src/encoding';
import {
  isMessageId, parseIncomingChunk, parseIncomingMsg, parseJoinAck, parseMsgAck, parseNotice, parseOkAck, parsePresence, parseResumeAck,
} from '../src/protocol';
import { ReplayGuard, replayKey } from '../src/replay';

const ROOM = 'omSJoNPRAws3-XOnTkTuRw';

describe('acks', () => {
  it('parses a join ack with limits and skips malformed members', () => {
    const ack = parseJoinAck({
      ok: true, member: 'me', at: 5,
      members: [{ member: 'a', at: 1, profile: 'AQID' }, { member: 'b', at: -1, profile: 'x' }, { member: 'me', at: 2, profile: 'AQ' }, 'junk'],
      limits: { max_message_bytes: 65536, max_chunk_bytes: 262144, max_file_chunks: 400, max_file_bytes: 104857600, max_members_per_room: 64 },
    });
    expect(ack).toEqual({
      ok: true,
      value: {
        member: 'me', at: 5, members: [{ member: 'a', at: 1, profile: 'AQID' }],
        limits: { maxMessageBytes: 65536, maxChunkBytes: 262144, maxFileChunks: 400, maxFileBytes: 104857600, maxMembersPerRoom: 64 },
        session: null, graceMs: 0, windowMs: 0, missed: null,
      },
    });
    expect(parseJoinAck({ ok: true, member: 'me', at: 5, members: [] })).toMatchObject({ ok: true, value: { limits: null } });
  });

  it('parses the resumable session of a join ack (protocol v1.1)', () => {
    const ack = parseJoinAck({
      ok: true, member: 'me', at: 5, members: [], epoch: 'e1', pos: 9, token: 'dG9rZW4', grace_ms: 20_000, window_ms: 120_000,
      missed: { messages: 41, exact: false },
    });
    expect(ack).toMatchObject({
      ok: true,
      value: { session: { epoch: 'e1', pos: 9, token: 'dG9rZW4' }, graceMs: 20_000, windowMs: 120_000, missed: { messages: 41, exact: false } },
    });
    // A token that is not base64url, or no epoch: no session (the client joins afresh next time).
    expect(parseJoinAck({ ok: true, member: 'me', at: 5, members: [], epoch: 'e1', pos: 9, token: 'a b' })).toMatchObject({ value: { session: null } });
    expect(parseJoinAck({ ok: true, member: 'me', at: 5, members: [], epoch: '', pos: 9, token: 'x' })).toMatchObject({ value: { session: null } });
    expect(parseJoinAck({ ok: true, member: 'me', at: 5, members: [], missed: { messages: -1, exact: true } })).toMatchObject({ value: { missed: null } });
  });

  it('parses resume acks and their failures', () => {
    expect(parseResumeAck({ ok: true, member: 'me', at: 5, token: 'bmV3', epoch: 'e1', pos: 12, replayed: 3 })).toEqual({
      ok: true, value: { member: 'me', at: 5, session: { epoch: 'e1', pos: 12, token: 'bmV3' }, replayed: 3, missed: null, limits: null },
    });
    expect(parseResumeAck({ ok: true, member: 'me', at: 5, epoch: 'e1', pos: 12, replayed: 3 })).toMatchObject({ ok: false, code: 'unknown' });
    expect(parseResumeAck({ ok: false, error: { code: 'resume_failed', message: 'unknown session' } }))
      .toEqual({ ok: false, code: 'resume_failed', message: 'unknown session' });
  });

  it('accepts client message ids of 1–64 base64url characters', () => {
    expect(isMessageId('a')).toBe(true);
    expect(isMessageId('A-_z09'.repeat(10).slice(0, 64))).toBe(true);
    expect(isMessageId('')).toBe(false);
    expect(isMessageId('x'.repeat(65))).toBe(false);
    expect(isMessageId('a+b')).toBe(false);
  });

  it('keeps a retry hint of a rate-limited ack', () => {
    expect(parseMsgAck({ ok: false, error: { code: 'rate_limited', message: 'slow', retry_ms: 250 } })).toMatchObject({ code: 'rate_limited', retryMs: 250 });
  });

  it('turns errors and garbage into error acks', () => {
    expect(parseJoinAck({ ok: false, error: { code: 'room_full', message: 'full' } })).toEqual({ ok: false, code: 'room_full', message: 'full' });
    expect(parseJoinAck({ ok: false, error: { code: 'weird' } })).toMatchObject({ ok: false, code: 'unknown' });
    expect(parseJoinAck(null)).toMatchObject({ ok: false });
    expect(parseJoinAck({ ok: true, member: '', at: 1, members: [] })).toMatchObject({ ok: false });
    expect(parseMsgAck({ ok: true, ts: 42 })).toEqual({ ok: true, value: { ts: 42, pos: 0, duplicate: false } });
    expect(parseMsgAck({ ok: true, ts: 42, pos: 7, duplicate: true })).toEqual({ ok: true, value: { ts: 42, pos: 7, duplicate: true } });
    expect(parseMsgAck({ ok: true, ts: 1.5 })).toMatchObject({ ok: false });
    expect(parseOkAck({ ok: true })).toEqual({ ok: true, value: null });
    expect(parseOkAck({ ok: false, error: { code: 'rate_limited', message: 'slow down' } })).toMatchObject({ code: 'rate_limited' });
    expect(parseOkAck({ ok: false, error: { code: 'too_large', message: 'x'.repeat(10_000) } })).toMatchObject({ message: 'x'.repeat(500) });
  });
});

describe('server events', () => {
  it('parses presence', () => {
    expect(parsePresence({ room: ROOM, kind: 'join', member: 'a', at: 1, profile: 'AQID' })).toEqual({ room: ROOM, kind: 'join', member: 'a', at: 1, pos: 0, profile: 'AQID' });
    expect(parsePresence({ room: ROOM, kind: 'away', member: 'a', at: 1, pos: 4 })).toEqual({ room: ROOM, kind: 'away', member: 'a', at: 1, pos: 4 });
    expect(parsePresence({ room: ROOM, kind: 'back', member: 'a', at: 2, pos: 5 })).toEqual({ room: ROOM, kind: 'back', member: 'a', at: 2, pos: 5 });
    expect(parsePresence({ room: ROOM, kind: 'leave', member: 'a', at: 1, reason: 'timeout' })).toMatchObject({ reason: 'timeout' });
    expect(parsePresence({ room: ROOM, kind: 'leave', member: 'a', at: 1, reason: 'aliens' })).toMatchObject({ reason: 'unknown' });
    expect(parsePresence({ room: 'short', kind: 'join', member: 'a', at: 1, profile: 'AQID' })).toBeNull();
    expect(parsePresence({ room: ROOM, kind: 'join', member: 'a', at: 1, profile: '<script>' })).toBeNull();
    expect(parsePresence({ room: ROOM, kind: 'wave', member: 'a', at: 1 })).toBeNull();
    // Found by web_room: a time past what a Date holds made the presence alert throw
    // ("Invalid time value") inside the session. It is refused like any malformed time.
    expect(parsePresence({ room: ROOM, kind: 'away', member: 'a', at: 8_640_000_000_000_000 })).not.toBeNull();
    expect(parsePresence({ room: ROOM, kind: 'away', member: 'a', at: 8_640_000_000_000_001 })).toBeNull();
    expect(parseMsgAck({ ok: true, ts: 2 ** 53 - 1 }).ok).toBe(false);
  });

  it('parses messages and chunks with binary data in any Socket.IO form', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    for (const data of [bytes, bytes.buffer.slice(0), Buffer.from(bytes)]) {
      expect(parseIncomingMsg({ room: ROOM, from: 'a', ts: 9, data })).toEqual({ room: ROOM, from: 'a', ts: 9, data: bytes, to: null, pos: 0 });
    }
    expect(parseIncomingMsg({ room: ROOM, from: 'a', ts: 9, data: 'AQID' })).toBeNull();
    expect(parseIncomingMsg({ room: ROOM, from: 'a', ts: 9, data: bytes, to: 'me' })).toMatchObject({ to: 'me' });
    expect(parseIncomingChunk({ room: ROOM, from: 'a', file: 'AAAAAAAAAAAAAAAA', seq: 3, data: bytes })).toMatchObject({ seq: 3 });
    expect(parseIncomingChunk({ room: ROOM, from: 'a', file: 'AAAAAAAAAAAAAAAA', seq: -1, data: bytes })).toBeNull();
    expect(parseIncomingChunk({ room: ROOM, from: 'a', file: 'bad', seq: 0, data: bytes })).toBeNull();
  });

  it('parses notices', () => {
    expect(parseNotice({ code: 'shutting_down', message: 'bye' })).toEqual({ code: 'shutting_down', message: 'bye' });
    expect(parseNotice({ message: 'no code' })).toBeNull();
  });
});

describe('base64url', () => {
  it('round-trips every length and refuses non-canonical text', () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      const text = toBase64Url(bytes);
      expect(text).toBe(Buffer.from(bytes).toString('base64url'));
      expect(fromBase64Url(text)).toEqual(bytes);
    }
    expect(fromBase64Url('AB')).toBeNull();
    expect(fromBase64Url('AQ==')).toBeNull();
    expect(fromBase64Url('A')).toBeNull();
    expect(fromBase64Url('a+b/')).toBeNull();
  });
});

describe('replay guard', () => {
  it('drops a second copy and forgets the oldest beyond its capacity', () => {
    const guard = new ReplayGuard(2);
    expect(guard.accept(replayKey('k', 1, 's'))).toBe(true);
    expect(guard.accept(replayKey('k', 1, 's'))).toBe(false);
    expect(guard.accept(replayKey('k', 2, 's'))).toBe(true);
    expect(guard.accept(replayKey('k', 3, 's'))).toBe(true);
    expect(guard.size).toBe(2);
    expect(guard.accept(replayKey('k', 1, 's'))).toBe(true);
  });
});
