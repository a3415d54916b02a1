//! Replay and duplicate detection for room messages. The server can replay what it
//! relayed (docs/crypto.md §10): every accepted message is remembered by a key built from its
//! sender's public key, its `sent_at` and its signature, and a second copy is dropped.
//! Memory is bounded: the oldest keys are forgotten first.

export const DEFAULT_REPLAY_CAPACITY = 8192;

export class ReplayGuard {
  readonly #seen = new Set<string>();
  readonly #capacity: number;

  constructor(capacity: number = DEFAULT_REPLAY_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
    this.#capacity = capacity;
  }

  /** Records `key`; returns false if it was already seen (a replay or duplicate). */
  accept(key: string): boolean {
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    if (this.#seen.size > this.#capacity) {
      // A Set iterates in insertion order, so the first key is the oldest.
      const oldest = this.#seen.values().next();
      if (oldest.done !== true) this.#seen.delete(oldest.value);
    }
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }
}

/** The de-duplication key of a message: who (by key, stable across reconnects), when, and what (the signature). */
export function replayKey(senderKey: string, sentAt: number, signature: string): string {
  return `${senderKey}|${sentAt}|${signature}`;
}
