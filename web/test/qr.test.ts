// The QR encoder against an independent one (the Python package qrcode, see
// gen-qr-vectors.py): the same version and every module the same, for each mask; and the
// mask chosen by the standard's penalty rules.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alignmentPositions, byteCapacity, encodeText, formatBits, MAX_VERSION, penaltyScore } from '../src/qr';

interface Vector { readonly text: string; readonly version: number; readonly mask: number; readonly rows: readonly string[] }
const vectors = JSON.parse(readFileSync(new URL('./qr-vectors.json', import.meta.url), 'utf8')) as {
  readonly chosen: readonly Vector[]; readonly forced: readonly Vector[];
};

function rows(text: string, mask?: number): { version: number; mask: number; rows: string[] } {
  const code = encodeText(text, mask === undefined ? {} : { mask });
  return { version: code.version, mask: code.mask, rows: code.dark.map((row) => row.map((dark) => (dark ? '1' : '0')).join('')) };
}

function grid(lines: readonly string[]): { size: number; dark: boolean[][] } {
  return { size: lines.length, dark: lines.map((line) => [...line].map((c) => c === '#')) };
}

describe('QR encoder (byte mode, level M)', () => {
  it.each(vectors.chosen.map((v) => [`${v.text.slice(0, 40)} (v${v.version}, mask ${v.mask})`, v] as const))('matches qrcode module for module: %s', (_, vector) => {
    expect(rows(vector.text, vector.mask)).toEqual({ version: vector.version, mask: vector.mask, rows: vector.rows });
  });

  it.each(vectors.forced.map((v) => [v.mask, v] as const))('matches qrcode with mask %i', (mask, vector) => {
    expect(rows(vector.text, mask)).toEqual({ version: vector.version, mask, rows: vector.rows });
  });

  it('covers invite links and more: versions 1 to 29, with version information from 7 and several blocks', () => {
    expect(vectors.chosen.map((v) => v.version)).toEqual(expect.arrayContaining([1, 3, 5, 6, 13, 29]));
  });

  it('picks the mask with the lowest penalty, the first of equals', () => {
    for (const { text } of vectors.chosen) {
      const scores = [0, 1, 2, 3, 4, 5, 6, 7].map((mask) => penaltyScore(encodeText(text, { mask })));
      expect(encodeText(text).mask).toBe(scores.indexOf(Math.min(...scores)));
    }
  });

  it('scores the penalty rules as the standard says', () => {
    // All light, 11 × 11: rule 1, 22 lines of 11 (3 + 6 each); rule 2, 100 blocks of 2 × 2
    // (3 each); rule 4, 0 % dark (9 steps of 5 % from 50 %, 10 each).
    expect(penaltyScore(grid(Array.from({ length: 11 }, () => '.'.repeat(11))))).toBe(22 * 9 + 100 * 3 + 90);
    // A checkerboard: no runs, no blocks, half dark.
    expect(penaltyScore(grid(Array.from({ length: 11 }, (_, y) => Array.from({ length: 11 }, (_, x) => ((x + y) % 2 === 0 ? '#' : '.')).join(''))))).toBe(0);
    // Rule 3: a finder-like 1:1:3:1:1 row with light on both sides counts once per side (40 each).
    const light = Array.from({ length: 15 }, () => '.'.repeat(15));
    const withFinder = [...light];
    withFinder[7] = '....#.###.#....';
    const columnsOnly = [...light];
    columnsOnly[7] = '....#.#.#.#....';
    // The two differ in rule 3 (2 × 40) and in column 7, whose light run of 15 (rule 1: 3 + 10)
    // the finder's middle splits into two of 7 (5 each): 80 − 3.
    expect(penaltyScore(grid(withFinder)) - penaltyScore(grid(columnsOnly))).toBe(80 - 3);
  });

  it('knows the published capacities and patterns', () => {
    // ISO/IEC 18004 table 7, level M, byte mode.
    expect([1, 2, 5, 10, 40].map(byteCapacity)).toEqual([14, 26, 84, 213, 2331]);
    expect(alignmentPositions(1)).toEqual([]);
    expect(alignmentPositions(7)).toEqual([6, 22, 38]);
    expect(alignmentPositions(32)).toEqual([6, 34, 60, 86, 112, 138]);
    // Annex C: level M, mask 5 → 100000011001110.
    expect(formatBits(5).toString(2).padStart(15, '0')).toBe('100000011001110');
    const longest = 'x'.repeat(byteCapacity(MAX_VERSION));
    expect(encodeText(longest).version).toBe(40);
    expect(() => encodeText(`${longest}x`)).toThrow(/too long/);
  });

  it('takes the smallest version that holds the text', () => {
    expect(encodeText('x'.repeat(14)).version).toBe(1);
    expect(encodeText('x'.repeat(15)).version).toBe(2);
  });
});
