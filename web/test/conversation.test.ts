// Replies, reactions, edits and deletions: only a text's author may edit or delete it, the
// latest edit wins, a deletion is final, reactions count one per member per emoji.
import { describe, expect, it } from 'vitest';
import type { EditBody, MessageRef, ReactionBody } from '../src/content';
import { Conversation, MAX_EMOJI_PER_MEMBER, MAX_KNOWN_TEXTS } from '../src/conversation';

const ALICE = 'alice-key';
const BOB = 'bob-key';
const MALLORY = 'mallory-key';
const ref = (key: string, sentAt: number): MessageRef => ({ key, sentAt });
const edit = (to: MessageRef, sentAt: number): EditBody => ({ type: 'edit', to, text: `v${sentAt}`, sentAt });
const react = (to: MessageRef, emoji: string, add: boolean, sentAt: number): ReactionBody => ({ type: 'reaction', to, emoji, add, sentAt });

describe('conversation', () => {
  it('lets only the author edit or delete, and only known texts', () => {
    const c = new Conversation(ALICE);
    const bobs = ref(BOB, 100);
    c.record(bobs, 'item-1');
    expect(c.edit(MALLORY, edit(bobs, 101))).toBe('not-author');
    expect(c.delete(MALLORY, { type: 'delete', to: bobs, sentAt: 102 })).toBe('not-author');
    expect(c.edit(MALLORY, edit(ref(MALLORY, 100), 103))).toBe('unknown');
    expect(c.edit(BOB, edit(ref(BOB, 50), 104))).toBe('unknown');
    expect(c.edit(BOB, edit(bobs, 105))).toBeNull();
    expect(c.itemOf(bobs)).toBe('item-1');
    expect(c.refOf('item-1')).toEqual(bobs);
    expect(c.ownAndLive(bobs)).toBe('not-author');
  });

  it('keeps the latest edit and a deletion for good', () => {
    const c = new Conversation(ALICE);
    const m = ref(BOB, 100);
    c.record(m, 'item-1');
    expect(c.edit(BOB, edit(m, 300))).toBeNull();
    expect(c.edit(BOB, edit(m, 200))).toBe('stale');
    expect(c.edit(BOB, edit(m, 300))).toBe('stale');
    c.react(ALICE, 'Alice', react(m, '👍', true, 1));
    expect(c.delete(BOB, { type: 'delete', to: m, sentAt: 500 })).toBeNull();
    expect(c.reactions(m)).toEqual([]);
    expect(c.edit(BOB, edit(m, 600))).toBe('deleted');
    expect(c.react(ALICE, 'Alice', react(m, '👍', true, 2))).toBe('deleted');
    expect(c.isDeleted(m)).toBe(true);
  });

  it('counts one reaction per member per emoji, by the latest sent_at', () => {
    const c = new Conversation(ALICE);
    const m = ref(BOB, 100);
    c.record(m, 'item-1');
    c.react(MALLORY, 'Mallory', react(m, '👍', true, 10));
    expect(c.react(MALLORY, 'Mallory', react(m, '👍', true, 10))).toBe('stale');
    expect(c.react(MALLORY, 'Mallory', react(m, '👍', false, 5))).toBe('stale');
    c.react(ALICE, 'Alice', react(m, '👍', true, 11));
    expect(c.react(BOB, 'Bob', react(m, '🎉', true, 12))).toEqual([
      { emoji: '👍', count: 2, names: ['Mallory', 'Alice'], mine: true },
      { emoji: '🎉', count: 1, names: ['Bob'], mine: false },
    ]);
    expect(c.hasOwnReaction(m, '👍')).toBe(true);
    expect(c.react(ALICE, 'Alice', react(m, '👍', false, 13))).toEqual([
      { emoji: '👍', count: 1, names: ['Mallory'], mine: false },
      { emoji: '🎉', count: 1, names: ['Bob'], mine: false },
    ]);
    expect(c.react(BOB, 'Bob', react(ref(BOB, 1), '👍', true, 14))).toBe('unknown');
  });

  it('bounds the emoji of one member on one text, and the texts remembered', () => {
    const c = new Conversation(ALICE);
    const m = ref(BOB, 100);
    c.record(m, 'item-1');
    for (let i = 0; i < MAX_EMOJI_PER_MEMBER; i++) c.react(MALLORY, 'Mallory', react(m, `e${i}`, true, i + 1));
    expect(c.react(MALLORY, 'Mallory', react(m, 'new', true, 100))).toBe('too-many');
    c.react(MALLORY, 'Mallory', react(m, 'e0', false, 101));
    expect(c.react(MALLORY, 'Mallory', react(m, 'new', true, 102))).toHaveLength(MAX_EMOJI_PER_MEMBER);
    for (let i = 0; i < MAX_KNOWN_TEXTS; i++) c.record(ref(ALICE, 1000 + i), `own-${i}`);
    expect(c.itemOf(m)).toBeNull();
    expect(c.ownAndLive(ref(ALICE, 1000 + MAX_KNOWN_TEXTS - 1))).toBeNull();
  });
});
