// The typing indicator: shown per member for a few seconds, cleared by their text, and
// own typing messages paced.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { failureText } from '../src/format';
import { TYPING_SEND_INTERVAL_MS, TYPING_SHOW_MS, TypingTracker } from '../src/typing';

describe('typing tracker', () => {
  beforeEach(() => { vi.useFakeTimers(); });
  afterEach(() => { vi.useRealTimers(); });

  it('shows members while they type and forgets them after a pause or a text', () => {
    const seen: (readonly string[])[] = [];
    const tracker = new TypingTracker((members) => seen.push(members));
    tracker.start('bob');
    tracker.start('carol');
    expect(seen.at(-1)).toEqual(['bob', 'carol']);
    tracker.stop('carol');
    expect(seen.at(-1)).toEqual(['bob']);
    vi.advanceTimersByTime(TYPING_SHOW_MS - 1);
    tracker.start('bob');
    vi.advanceTimersByTime(TYPING_SHOW_MS - 1);
    expect(seen.at(-1)).toEqual(['bob']);
    vi.advanceTimersByTime(1);
    expect(seen.at(-1)).toEqual([]);
  });

  it('paces own typing messages', () => {
    const tracker = new TypingTracker(() => undefined);
    expect(tracker.shouldSend(10_000)).toBe(true);
    expect(tracker.shouldSend(10_000 + TYPING_SEND_INTERVAL_MS - 1)).toBe(false);
    expect(tracker.shouldSend(10_000 + TYPING_SEND_INTERVAL_MS)).toBe(true);
    tracker.resetSent();
    expect(tracker.shouldSend(10_000 + TYPING_SEND_INTERVAL_MS + 1)).toBe(true);
  });
});

describe('failure text', () => {
  it('explains why a message was not sent', () => {
    expect(failureText({ ok: false, code: 'too_large', message: 'x' })).toBe('too large for this server');
    expect(failureText({ ok: false, code: 'timeout', message: 'x' })).toMatch(/may not have been delivered/);
    expect(failureText({ ok: false, code: 'room_full', message: 'the room is full' })).toBe('the room is full');
  });
});
