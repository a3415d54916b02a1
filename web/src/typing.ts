//! Who is typing: remembers, per member, that a sealed `typing` arrived and forgets it
//! after a few seconds or as soon as that member's text arrives. Also paces this
//! person's own `typing` messages (at most one every few seconds).

/** How long "is typing" stays after the last `typing` message. */
export const TYPING_SHOW_MS = 6000;
/** Own `typing` messages are sent at most this often. */
export const TYPING_SEND_INTERVAL_MS = 3000;

export class TypingTracker {
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #changed: (members: readonly string[]) => void;
  #lastSent = 0;

  /** `changed` receives the members now typing, oldest first. */
  constructor(changed: (members: readonly string[]) => void) {
    this.#changed = changed;
  }

  /** `member` is typing (again). */
  start(member: string): void {
    const existing = this.#timers.get(member);
    if (existing !== undefined) clearTimeout(existing);
    this.#timers.set(member, setTimeout(() => this.stop(member), TYPING_SHOW_MS));
    this.#emit();
  }

  /** `member` sent a text, left, or went quiet. */
  stop(member: string): void {
    const timer = this.#timers.get(member);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(member);
    this.#emit();
  }

  clear(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#emit();
  }

  /** Whether an own `typing` may be sent now; if so, counts it as sent. */
  shouldSend(now: number): boolean {
    if (now - this.#lastSent < TYPING_SEND_INTERVAL_MS) return false;
    this.#lastSent = now;
    return true;
  }

  /** After sending a text: the others cleared the line, so the next keystroke may say so again. */
  resetSent(): void {
    this.#lastSent = 0;
  }

  #emit(): void {
    this.#changed(Array.from(this.#timers.keys()));
  }
}
