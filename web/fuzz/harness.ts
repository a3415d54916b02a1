//! The web client's fuzzing loop: fast-check properties over inputs mutated from valid
//! seeds (and some made from scratch), run for a fixed time rather than a fixed count.
//!
//! Why not coverage-guided: Jazzer.js (libFuzzer for Node) installs from npm here, but
//! its only Linux x64 binary needs glibc 2.38 (this Debian has 2.36), and its older
//! releases build or download the binary from outside the npm registry. So each target
//! states what valid input looks like (seeds from the crypto vectors and the protocol),
//! how to damage it (bit flips, byte and character edits, splices, values of the wrong
//! type in JSON), and what must hold for any input; fast-check generates and, when a
//! property fails, shrinks the input to a small counterexample and prints the seed that
//! replays it. Line and branch coverage come from `npm run fuzz -- --coverage`.
//!
//! Time per target: FUZZ_SECONDS (default 10). Each target prints its executions, rate,
//! and the distinct outcomes it reached (its own labels of accepting and refusing
//! paths), and fails when a property fails or when an outcome it must reach never was.

import fc from 'fast-check';
import { expect } from 'vitest';

export const FUZZ_SECONDS = Number(process.env.FUZZ_SECONDS ?? '10');
/** Vitest's timeout for one target: its fuzzing time, plus room to shrink a failure. */
export const TEST_TIMEOUT_MS = FUZZ_SECONDS * 1000 + 300_000;

/** Labels of what inputs reached, with counts. */
export class Outcomes {
  readonly seen = new Map<string, number>();

  hit(label: string): void {
    this.seen.set(label, (this.seen.get(label) ?? 0) + 1);
  }
}

export interface Target<T> {
  readonly name: string;
  readonly input: fc.Arbitrary<T>;
  /** Runs one input; throws (an assertion) when something that must hold does not. */
  readonly run: (input: T, outcomes: Outcomes) => void | Promise<void>;
  /** Outcomes the seeds must reach: the properties are not vacuous. */
  readonly mustReach: readonly string[];
}

/** Runs `target` for FUZZ_SECONDS; throws on the first failure (shrunk) or a missed outcome. */
export async function fuzz<T>(target: Target<T>): Promise<void> {
  const outcomes = new Outcomes();
  let executions = 0;
  const started = performance.now();
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  await fc.assert(
    fc.asyncProperty(target.input, async (input) => {
      executions++;
      await target.run(input, outcomes);
    }),
    {
      seed,
      numRuns: Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: FUZZ_SECONDS * 1000,
      markInterruptAsFailure: false,
      endOnFailure: false,
    },
  );
  const seconds = (performance.now() - started) / 1000;
  const reached = [...outcomes.seen.keys()].sort();
  const summary = {
    target: target.name,
    seed,
    seconds: Math.round(seconds),
    executions,
    execPerSecond: Math.round(executions / seconds),
    outcomes: reached.length,
    result: 'no failure',
  };
  console.log(`fuzz ${JSON.stringify(summary)}`);
  if (process.env.FUZZ_VERBOSE !== undefined) {
    console.log(reached.map((label) => `  ${label}: ${String(outcomes.seen.get(label))}`).join('\n'));
  }
  expect(target.mustReach.filter((label) => !outcomes.seen.has(label)), 'outcomes never reached').toEqual([]);
}

// ---- Inputs ----------------------------------------------------------------------------

type ByteEdit =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'copy'; from: number; at: number; length: number }
  | { kind: 'splice'; other: number; at: number }
  | { kind: 'truncate'; at: number };

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0xc0, 0xe2, 0xf0];

const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant('set' as const), at: fc.nat(),
    byte: fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 })),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ kind: fc.constant('copy' as const), from: fc.nat(), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('splice' as const), other: fc.nat(), at: fc.nat() }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);

function editBytes(seed: Uint8Array, edits: readonly ByteEdit[], seeds: readonly Uint8Array[]): Uint8Array {
  let bytes = Array.from(seed);
  const at = (n: number, extra = 0): number => (bytes.length + extra === 0 ? 0 : n % (bytes.length + extra));
  for (const edit of edits) {
    switch (edit.kind) {
      case 'flip':
        if (bytes.length > 0) { const i = at(edit.at); bytes[i] = (bytes[i] ?? 0) ^ (1 << edit.bit); }
        break;
      case 'set':
        if (bytes.length > 0) bytes[at(edit.at)] = edit.byte;
        break;
      case 'insert':
        bytes.splice(at(edit.at, 1), 0, ...edit.bytes);
        break;
      case 'delete':
        bytes.splice(at(edit.at), edit.length);
        break;
      case 'copy': {
        const from = at(edit.from);
        bytes.splice(at(edit.at, 1), 0, ...bytes.slice(from, from + edit.length));
        break;
      }
      case 'splice': {
        const other = seeds[edit.other % seeds.length] ?? new Uint8Array();
        bytes = [...bytes.slice(0, at(edit.at, 1)), ...Array.from(other).slice(at(edit.at, 1))];
        break;
      }
      case 'truncate':
        bytes = bytes.slice(0, at(edit.at, 1));
        break;
    }
  }
  return new Uint8Array(bytes);
}

/** Bytes: mostly a seed with a few edits, sometimes a seed as is, sometimes random. */
export function bytesFrom(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const pick = fc.nat({ max: seeds.length - 1 });
  return fc.oneof(
    { weight: 2, arbitrary: pick.map((i) => Uint8Array.from(seeds[i] ?? [])) },
    {
      weight: 12,
      arbitrary: fc.tuple(pick, fc.array(byteEdit, { minLength: 1, maxLength: 8 }))
        .map(([i, edits]) => editBytes(seeds[i] ?? new Uint8Array(), edits, seeds)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
  );
}

const INTERESTING_TEXT = [
  '', '\u0000', '\n', '\t', '\u001b[2J', '\u007f', '\u0085', '\u2028', '\u202e', '\u2066', '\u200f', '\ufeff', '\ud800',
  'é', '👋🏽', '"', '\\', '#', '/', '..', '%', '%00', 'javascript:', 'http://', 'https://', 'data:', ' ', '=', '+', '-', '_',
];

type TextEdit =
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'replace'; at: number; text: string }
  | { kind: 'splice'; other: number; at: number }
  | { kind: 'repeat'; at: number; length: number; times: number };

const someText = fc.oneof(fc.constantFrom(...INTERESTING_TEXT), fc.string({ maxLength: 8, unit: 'binary' }));
const textEdit: fc.Arbitrary<TextEdit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: someText }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), text: someText }),
  fc.record({ kind: fc.constant('splice' as const), other: fc.nat(), at: fc.nat() }),
  fc.record({
    kind: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }),
    times: fc.integer({ min: 2, max: 300 }),
  }),
);

function editText(seed: string, edits: readonly TextEdit[], seeds: readonly string[]): string {
  let text = seed;
  const at = (n: number, extra = 0): number => (text.length + extra === 0 ? 0 : n % (text.length + extra));
  for (const edit of edits) {
    switch (edit.kind) {
      case 'insert': { const i = at(edit.at, 1); text = text.slice(0, i) + edit.text + text.slice(i); break; }
      case 'delete': { const i = at(edit.at); text = text.slice(0, i) + text.slice(i + edit.length); break; }
      case 'replace': { const i = at(edit.at); text = text.slice(0, i) + edit.text + text.slice(i + Math.max(1, edit.text.length)); break; }
      case 'splice': {
        const other = seeds[edit.other % seeds.length] ?? '';
        const i = at(edit.at, 1);
        text = text.slice(0, i) + other.slice(i);
        break;
      }
      case 'repeat': {
        const i = at(edit.at);
        text = text.slice(0, i) + text.slice(i, i + edit.length).repeat(edit.times) + text.slice(i);
        break;
      }
    }
  }
  return text;
}

/** Text: mostly a seed with a few edits, sometimes a seed as is, sometimes random. */
export function textFrom(seeds: readonly string[]): fc.Arbitrary<string> {
  const pick = fc.nat({ max: seeds.length - 1 });
  return fc.oneof(
    { weight: 2, arbitrary: pick.map((i) => seeds[i] ?? '') },
    {
      weight: 12,
      arbitrary: fc.tuple(pick, fc.array(textEdit, { minLength: 1, maxLength: 6 }))
        .map(([i, edits]) => editText(seeds[i] ?? '', edits, seeds)),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 200, unit: 'grapheme' }) },
  );
}

/** Values of the wrong kind, at the edges, or simply other. */
export const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null, undefined, true, false, 0, -0, -1, 1, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1,
    2 ** 53, 2 ** 53 + 2, 1e308, -(2 ** 53), '', '0', 'ok', 'true', [], {}, [[]], { ok: true },
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 70, unit: 'binary' }),
  fc.uint8Array({ maxLength: 64 }),
  fc.uint8Array({ maxLength: 64 }).map((a) => a.buffer),
  fc.jsonValue({ maxDepth: 2 }),
);

type ValueEdit =
  | { kind: 'replace'; at: number; value: unknown }
  | { kind: 'delete'; at: number }
  | { kind: 'add'; at: number; key: string; value: unknown }
  | { kind: 'text'; at: number; edits: TextEdit[] };

const valueEdit = (keys: readonly string[]): fc.Arbitrary<ValueEdit> => fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: oddValue }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('add' as const), at: fc.nat(),
    key: fc.oneof(fc.constantFrom(...keys, '__proto__', 'constructor', 'toString'), fc.string({ maxLength: 8 })), value: oddValue,
  }),
  fc.record({ kind: fc.constant('text' as const), at: fc.nat(), edits: fc.array(textEdit, { minLength: 1, maxLength: 3 }) }),
);

/** Copies JSON-like values, keeping binary data as fresh copies. */
export function cloneValue(value: unknown): unknown {
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  if (value instanceof ArrayBuffer) return value.slice(0);
  if (Array.isArray(value)) return value.map(cloneValue);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneValue(v)]));
  }
  return value;
}

/** Every container (object or array) and leaf of `root`, with how to replace or delete it. */
function places(root: { value: unknown }): { get: () => unknown; set: (v: unknown) => void; remove: () => void }[] {
  const out: { get: () => unknown; set: (v: unknown) => void; remove: () => void }[] = [];
  const walk = (get: () => unknown, set: (v: unknown) => void, remove: () => void): void => {
    out.push({ get, set, remove });
    const value = get();
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return;
    if (Array.isArray(value)) {
      value.forEach((_, i) => walk(() => value[i], (v) => { value[i] = v; }, () => { value.splice(i, 1); }));
    } else if (typeof value === 'object' && value !== null) {
      const record = value as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        walk(() => record[key], (v) => { record[key] = v; }, () => { delete record[key]; });
      }
    }
  };
  walk(() => root.value, (v) => { root.value = v; }, () => { root.value = undefined; });
  return out;
}

function editValue(seed: unknown, edits: readonly ValueEdit[]): unknown {
  const root = { value: cloneValue(seed) };
  for (const edit of edits) {
    const all = places(root);
    const place = all[edit.at % all.length];
    if (place === undefined) continue;
    switch (edit.kind) {
      case 'replace': place.set(cloneValue(edit.value)); break;
      case 'delete': place.remove(); break;
      case 'add': {
        const target = place.get();
        const plain = typeof target === 'object' && target !== null && !Array.isArray(target)
          && !(target instanceof ArrayBuffer) && !ArrayBuffer.isView(target);
        if (plain) {
          // A plain own property, even for `__proto__`, as JSON.parse would make it.
          Object.defineProperty(target, edit.key, { value: cloneValue(edit.value), enumerable: true, writable: true, configurable: true });
        }
        break;
      }
      case 'text': {
        const target = place.get();
        if (typeof target === 'string') place.set(editText(target, edit.edits, [target]));
        break;
      }
    }
  }
  return root.value;
}

/** JSON-like values (with binary data where Socket.IO puts it): seeds with edits, or odd values. */
export function valueFrom(seeds: readonly unknown[], keys: readonly string[] = []): fc.Arbitrary<unknown> {
  const pick = fc.nat({ max: seeds.length - 1 });
  return fc.oneof(
    { weight: 2, arbitrary: pick.map((i) => cloneValue(seeds[i])) },
    {
      weight: 12,
      arbitrary: fc.tuple(pick, fc.array(valueEdit(keys), { minLength: 1, maxLength: 4 }))
        .map(([i, edits]) => editValue(seeds[i], edits)),
    },
    { weight: 1, arbitrary: oddValue },
  );
}
