// Rendering helpers: times in the reader's time zone, the presence alert sentences users
// know from the original StreamChat, and the small strings around them.
import { describe, expect, it } from 'vitest';
import {
  atTime, byteSize, clock, connectionStatusText, durationText, gapText, linkSegments, nameSegments, presenceAlertText, shortFingerprint, tabTitle,
  textTooLongText, typingText,
} from '../src/format';

// 2026-11-29T14:30:45.123Z
const TS = Date.UTC(2026, 10, 29, 14, 30, 45, 123);

describe('clock', () => {
  it('shows 24-hour time and ISO date in the given zone', () => {
    expect(clock(TS, 'UTC')).toEqual({ time: '14:30:45', date: '2026-11-29', iso: '2026-11-29T14:30:45.123Z' });
    expect(clock(TS, 'Asia/Kolkata')).toMatchObject({ time: '20:00:45', date: '2026-11-29' });
    expect(clock(TS, 'America/Los_Angeles')).toMatchObject({ time: '06:30:45', date: '2026-11-29' });
  });

  it('crosses midnight into the reader’s date', () => {
    const late = Date.UTC(2026, 10, 29, 23, 59, 59);
    expect(clock(late, 'Pacific/Kiritimati')).toMatchObject({ time: '13:59:59', date: '2026-11-30' });
    expect(clock(Date.UTC(2027, 0, 1, 0, 0, 0), 'America/New_York')).toMatchObject({ time: '19:00:00', date: '2026-12-31' });
  });

  it('writes midnight as 00, not 24', () => {
    expect(clock(Date.UTC(2026, 0, 2, 0, 5, 6), 'UTC').time).toBe('00:05:06');
  });

  it('defaults to the reader’s zone', () => {
    const local = new Date(TS);
    const pad = (n: number): string => String(n).padStart(2, '0');
    expect(clock(TS).time).toBe(`${pad(local.getHours())}:${pad(local.getMinutes())}:${pad(local.getSeconds())}`);
    expect(atTime(TS, 'UTC')).toBe('14:30:45 on 2026-11-29');
  });
});

describe('presence alerts', () => {
  it.each([
    [{ kind: 'join', name: 'Alice', at: TS } as const, 'Alice joined the chat at 14:30:45 on 2026-11-29'],
    [{ kind: 'rejoin', name: 'Alice', at: TS } as const, 'Alice rejoined the chat at 14:30:45 on 2026-11-29'],
    [{ kind: 'leave', name: 'Alice', at: TS, reason: 'left' } as const, 'Alice left the chat at 14:30:45 on 2026-11-29'],
    [{ kind: 'leave', name: 'Bob', at: TS, reason: 'disconnected' } as const, 'Bob left the chat at 14:30:45 on 2026-11-29 (disconnected)'],
    [{ kind: 'leave', name: 'Bob', at: TS, reason: 'timeout' } as const, 'Bob left the chat at 14:30:45 on 2026-11-29 (timed out)'],
    [{ kind: 'leave', name: 'Bob', at: TS, reason: 'server_restart' } as const, 'Bob left the chat at 14:30:45 on 2026-11-29 (server restart)'],
    [{ kind: 'leave', name: 'Bob', at: TS, reason: 'unknown' } as const, 'Bob left the chat at 14:30:45 on 2026-11-29'],
    [{ kind: 'self-join', at: TS } as const, 'You joined the chat at 14:30:45 on 2026-11-29'],
    [{ kind: 'self-rejoin', at: TS } as const, 'You rejoined the chat at 14:30:45 on 2026-11-29'],
  ])('%o', (alert, text) => {
    expect(presenceAlertText(alert, 'UTC')).toBe(text);
  });
});

describe('small strings', () => {
  it('shortens fingerprints to two groups', () => {
    expect(shortFingerprint('1a2b 3c4d 5e6f 7081 92a3')).toBe('1a2b 3c4d');
  });

  it('says who is typing', () => {
    expect(typingText([])).toBe('');
    expect(typingText(['Bob'])).toBe('Bob is typing…');
    expect(typingText(['Bob', 'Carol'])).toBe('Bob and Carol are typing…');
    expect(typingText(['Bob', 'Carol', 'Dan'])).toBe('3 people are typing…');
  });

  it('counts unread messages in the tab title', () => {
    expect(tabTitle(0)).toBe('StreamChat');
    expect(tabTitle(3)).toBe('(3) StreamChat');
    expect(tabTitle(120)).toBe('(99+) StreamChat');
  });

  it('formats byte sizes', () => {
    expect(byteSize(0)).toBe('0 B');
    expect(byteSize(1536)).toBe('1.5 KiB');
    expect(byteSize(256 * 1024)).toBe('256 KiB');
    expect(byteSize(50 * 1024 * 1024)).toBe('50 MiB');
  });
});

describe('links', () => {
  it('finds http(s) links and leaves everything else as text', () => {
    expect(linkSegments('see https://example.org/a?b=1, then')).toEqual([
      { kind: 'text', text: 'see ' },
      { kind: 'link', text: 'https://example.org/a?b=1', href: 'https://example.org/a?b=1' },
      { kind: 'text', text: ', then' },
    ]);
    expect(linkSegments('javascript:alert(1) and <a href="https://x">')).toEqual([
      { kind: 'text', text: 'javascript:alert(1) and <a href="' },
      { kind: 'link', text: 'https://x', href: 'https://x' },
      { kind: 'text', text: '">' },
    ]);
    expect(linkSegments('no links here')).toEqual([{ kind: 'text', text: 'no links here' }]);
    expect(linkSegments('(http://a.b/c)')).toEqual([
      { kind: 'text', text: '(' },
      { kind: 'link', text: 'http://a.b/c', href: 'http://a.b/c' },
      { kind: 'text', text: ')' },
    ]);
  });
});

describe('connection status', () => {
  it('says what the connection is doing', () => {
    expect(connectionStatusText({ kind: 'online', member: 'a', joinedAt: 1, limits: null })).toEqual({ label: 'Connected', tone: 'ok' });
    expect(connectionStatusText({ kind: 'connecting', attempt: 0 }).tone).toBe('busy');
    expect(connectionStatusText({ kind: 'offline', cause: 'server_restart', detail: '', attempt: 2 }).label).toBe('Offline (server restarting), reconnecting…');
    expect(connectionStatusText({ kind: 'offline', cause: 'network', detail: 'transport close', attempt: 1 }).label).toBe('Offline (connection lost), reconnecting…');
    expect(connectionStatusText({ kind: 'refused', code: 'room_full', message: 'x' }).label).toBe('Cannot join: the room is full');
    expect(connectionStatusText({ kind: 'closed' }).label).toBe('Left the room');
  });
});

describe('after a gap', () => {
  it('says how long, in the largest whole unit', () => {
    expect(durationText(200)).toBe('1 second');
    expect(durationText(45_000)).toBe('45 seconds');
    expect(durationText(180_000)).toBe('3 minutes');
    expect(durationText(60_000)).toBe('1 minute');
    expect(durationText(7_200_000)).toBe('2 hours');
  });

  it('says how many messages could not be recovered, or that nothing was missed', () => {
    expect(gapText(180_000, { messages: 41, exact: true }, false)).toBe('You were offline for 3 minutes: 41 messages could not be recovered');
    expect(gapText(180_000, { messages: 41, exact: false }, false)).toBe('You were offline for 3 minutes: at least 41 messages could not be recovered');
    expect(gapText(12_000, { messages: 1, exact: true }, false)).toBe('You were offline for 12 seconds: 1 message could not be recovered');
    expect(gapText(12_000, { messages: 0, exact: true }, false)).toBe('You were offline for 12 seconds; nothing was missed');
    expect(gapText(5000, { messages: 0, exact: false }, true))
      .toBe('You were offline for 5 seconds: messages sent meanwhile could not be recovered (the server restarted)');
  });

  it('has a line for coming back as the same member', () => {
    expect(presenceAlertText({ kind: 'self-resume', at: TS }, 'UTC')).toBe('You reconnected at 14:30:45 on 2026-11-29');
  });
});

describe('names in a line, for bidi isolation', () => {
  it('finds each name once, in order, and keeps every other character as text', () => {
    const line = presenceAlertText({ kind: 'join', name: 'שרה', at: TS }, 'UTC');
    expect(nameSegments(line, ['שרה'])).toEqual([
      { kind: 'name', text: 'שרה' },
      { kind: 'text', text: ' joined the chat at 14:30:45 on 2026-11-29' },
    ]);
    expect(nameSegments(typingText(['Ann', 'Anna']), ['Ann', 'Anna'])).toEqual([
      { kind: 'name', text: 'Ann' }, { kind: 'text', text: ' and ' }, { kind: 'name', text: 'Anna' }, { kind: 'text', text: ' are typing…' },
    ]);
    // A name that is also a word of the sentence: only the occurrence in its place.
    expect(nameSegments('A message from the was not shown.', ['the'])).toEqual([
      { kind: 'text', text: 'A message from ' }, { kind: 'name', text: 'the' }, { kind: 'text', text: ' was not shown.' },
    ]);
  });

  it('with no names, or names not in the line, gives the line as it is', () => {
    expect(nameSegments('3 people are typing…', [])).toEqual([{ kind: 'text', text: '3 people are typing…' }]);
    expect(nameSegments('You joined', ['Bob', ''])).toEqual([{ kind: 'text', text: 'You joined' }]);
    expect(nameSegments('', [])).toEqual([]);
  });

  it('joined back, the segments are the line', () => {
    const line = 'مريم and Bob are typing…';
    expect(nameSegments(line, ['مريم', 'Bob']).map((segment) => segment.text).join('')).toBe(line);
  });
});

describe('a text over the limit', () => {
  it('is refused with its length and the limit, never cut', () => {
    expect(textTooLongText(16_000, 16_000)).toBeNull();
    expect(textTooLongText(0, 16_000)).toBeNull();
    expect(textTooLongText(20_003, 16_000)).toBe(
      'Not sent: this message is 20,003 characters long; the limit is 16,000. Shorten it or split it into several messages.');
    expect(textTooLongText(16_001, 16_000)).toMatch(/16,001 characters.*limit is 16,000/);
  });
});
