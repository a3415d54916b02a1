//! Replies, reactions, edits and deletions (docs/crypto.md §8): which texts this tab knows,
//! who may change them, and the reactions on each. The same rules as the Rust client's
//! `session/conversation.rs`:
//! - a message is named by its author's public key and its body's `sent_at` (a `MessageRef`),
//!   both inside the signed body that refers to it;
//! - an `edit` or `delete` counts only when signed by the key in its reference (the key
//!   that signed the text); anyone else's changes nothing and is reported;
//! - it must name a text this tab knows (shown since it joined, among the last 4,096);
//!   one about an unknown message is ignored;
//! - of several edits the latest `sent_at` wins; a deleted text stays deleted and loses
//!   its reactions;
//! - reactions count one per member per emoji (a member's latest `reaction` for an emoji,
//!   by `sent_at`, says whether it is on), at most 8 different emoji per member per text.

import type { DeleteBody, EditBody, MessageRef, ReactionBody } from './content';

export const MAX_KNOWN_TEXTS = 4096;
export const MAX_EMOJI_PER_MEMBER = 8;

/** The reactions on a text with one emoji. */
export interface ReactionView {
  readonly emoji: string;
  readonly count: number;
  /** Who, in the order they reacted. */
  readonly names: readonly string[];
  /** Whether this person is one of them. */
  readonly mine: boolean;
}

export type Refusal = 'unknown' | 'not-author' | 'deleted' | 'stale' | 'too-many';

interface Reactor { key: string; name: string; emoji: string; on: boolean; sentAt: number }

interface Known {
  readonly itemId: string;
  editedAt: number | null;
  deleted: boolean;
  reactors: Reactor[];
}

/** The key a reference is stored under. */
export function refKey(ref: MessageRef): string {
  return `${ref.key}|${ref.sentAt}`;
}

export class Conversation {
  readonly #ownKey: string;
  readonly #texts = new Map<string, Known>();
  readonly #byItem = new Map<string, MessageRef>();

  constructor(ownKey: string) {
    this.#ownKey = ownKey;
  }

  /** Remembers a text shown as `itemId`; the same reference again changes nothing. */
  record(ref: MessageRef, itemId: string): void {
    const key = refKey(ref);
    if (this.#texts.has(key)) return;
    this.#texts.set(key, { itemId, editedAt: null, deleted: false, reactors: [] });
    this.#byItem.set(itemId, ref);
    if (this.#texts.size > MAX_KNOWN_TEXTS) {
      const [oldestKey, oldest] = this.#texts.entries().next().value ?? [];
      if (oldestKey !== undefined && oldest !== undefined) {
        this.#texts.delete(oldestKey);
        this.#byItem.delete(oldest.itemId);
      }
    }
  }

  /** The reference of the text shown as `itemId`. */
  refOf(itemId: string): MessageRef | null {
    return this.#byItem.get(itemId) ?? null;
  }

  /** The timeline item of the text `ref` names, if known here. */
  itemOf(ref: MessageRef): string | null {
    return this.#texts.get(refKey(ref))?.itemId ?? null;
  }

  isDeleted(ref: MessageRef): boolean {
    return this.#texts.get(refKey(ref))?.deleted === true;
  }

  /** Whether `ref` is a known, live text of this person's own. */
  ownAndLive(ref: MessageRef): Refusal | null {
    if (ref.key !== this.#ownKey) return 'not-author';
    const known = this.#texts.get(refKey(ref));
    if (known === undefined) return 'unknown';
    return known.deleted ? 'deleted' : null;
  }

  /** Applies an edit signed by `signer`; null when it counts, else why not. */
  edit(signer: string, body: EditBody): Refusal | null {
    if (signer !== body.to.key) return 'not-author';
    const known = this.#live(body.to);
    if (typeof known === 'string') return known;
    if (known.editedAt !== null && known.editedAt >= body.sentAt) return 'stale';
    known.editedAt = body.sentAt;
    return null;
  }

  /** Applies a deletion signed by `signer`; the reactions go with the text. */
  delete(signer: string, body: DeleteBody): Refusal | null {
    if (signer !== body.to.key) return 'not-author';
    const known = this.#live(body.to);
    if (typeof known === 'string') return known;
    known.deleted = true;
    known.reactors = [];
    return null;
  }

  /** Applies a reaction by `signer` (named `name`): the text's reactions now, or why not. */
  react(signer: string, name: string, body: ReactionBody): readonly ReactionView[] | Refusal {
    const known = this.#live(body.to);
    if (typeof known === 'string') return known;
    const existing = known.reactors.find((r) => r.key === signer && r.emoji === body.emoji);
    if (existing !== undefined) {
      if (existing.sentAt >= body.sentAt) return 'stale';
      existing.on = body.add;
      existing.sentAt = body.sentAt;
      existing.name = name;
    } else {
      const theirs = known.reactors.filter((r) => r.key === signer);
      if (theirs.length >= MAX_EMOJI_PER_MEMBER) {
        // Room for a new emoji only in place of one taken back.
        const off = theirs.find((r) => !r.on);
        if (off === undefined || !body.add) return 'too-many';
        known.reactors.splice(known.reactors.indexOf(off), 1);
      }
      known.reactors.push({ key: signer, name, emoji: body.emoji, on: body.add, sentAt: body.sentAt });
    }
    return this.reactions(body.to);
  }

  hasOwnReaction(ref: MessageRef, emoji: string): boolean {
    return this.#texts.get(refKey(ref))?.reactors.some((r) => r.key === this.#ownKey && r.emoji === emoji && r.on) === true;
  }

  /** The reactions on `ref`, per emoji in the order each was first put on. */
  reactions(ref: MessageRef): readonly ReactionView[] {
    const out: { emoji: string; count: number; names: string[]; mine: boolean }[] = [];
    for (const r of this.#texts.get(refKey(ref))?.reactors ?? []) {
      if (!r.on) continue;
      const mine = r.key === this.#ownKey;
      const count = out.find((c) => c.emoji === r.emoji);
      if (count === undefined) out.push({ emoji: r.emoji, count: 1, names: [r.name], mine });
      else {
        count.count += 1;
        count.names.push(r.name);
        count.mine ||= mine;
      }
    }
    return out;
  }

  #live(ref: MessageRef): Known | Refusal {
    const known = this.#texts.get(refKey(ref));
    if (known === undefined) return 'unknown';
    return known.deleted ? 'deleted' : known;
  }
}
