//! How far a file transfer is, in words: "3.0 of 12 MiB (25%) · 1.0 MiB/s · 9 s left".
//! The speed is measured over the last few seconds, so that it follows a transfer that
//! speeds up or slows down; pure, with the clock passed in, so the tests pin every string.

import { byteSize } from './format';

/** The speed is measured over this much of the recent past. */
const WINDOW_MS = 4000;
/** Before this much time has passed, there is no speed to tell. */
const MIN_SPAN_MS = 400;

export class RateMeter {
  readonly #now: () => number;
  readonly #samples: { readonly at: number; readonly bytes: number }[] = [];

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** `bytes` done so far (a running total). */
  sample(bytes: number): void {
    const at = this.#now();
    this.#samples.push({ at, bytes });
    // Keep one sample older than the window, so the window is always covered.
    while (this.#samples.length > 2 && (this.#samples[1]?.at ?? at) <= at - WINDOW_MS) this.#samples.shift();
  }

  /** Bytes per second over the recent past, or null while too little time has passed. */
  get bytesPerSecond(): number | null {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (first === undefined || last === undefined || last.at - first.at < MIN_SPAN_MS) return null;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.at - first.at));
  }
}

/** 9 000 → "9 s", 150 000 → "2 min 30 s", 7 500 000 → "2 h 5 min". */
export function timeLeftText(ms: number): string {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return seconds % 60 === 0 || minutes >= 10 ? `${minutes} min` : `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * "3.0 of 12 MiB (25%) · 1.0 MiB/s · 9 s left"; without a speed yet, only the amount and
 * the percentage. The percentage is rounded down, so 100% means done.
 */
export function progressText(done: number, total: number, bytesPerSecond: number | null): string {
  const percent = total > 0 ? Math.floor((Math.min(done, total) * 100) / total) : 100;
  const amount = `${byteSize(done)} of ${byteSize(total)} (${percent}%)`;
  if (bytesPerSecond === null || done >= total) return amount;
  if (bytesPerSecond <= 0) return `${amount} · stalled`;
  return `${amount} · ${byteSize(Math.round(bytesPerSecond))}/s · ${timeLeftText(((total - done) * 1000) / bytesPerSecond)} left`;
}

/** The bytes of a file in `chunks` parts of `chunkSize` (the last one smaller) that `parts` of them hold. */
export function bytesOfParts(parts: number, chunkSize: number, size: number): number {
  return Math.min(size, parts * chunkSize);
}
