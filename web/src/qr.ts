//! A small QR code encoder (ISO/IEC 18004), so that the invite link can be shown as a code
//! to scan without any network request or third-party package: byte mode (UTF-8),
//! error correction level M (about 15 % of the code may be damaged), versions 1 to 40,
//! the mask chosen by the standard's penalty rules. Pure functions, no DOM.

import { utf8 } from './encoding';

/** A QR code: `size` × `size` modules, `dark[y][x]` true for a dark module. No quiet zone. */
export interface QrCode {
  readonly version: number;
  readonly size: number;
  readonly mask: number;
  readonly dark: readonly (readonly boolean[])[];
}

export const MIN_VERSION = 1;
export const MAX_VERSION = 40;

// Level M, indexed by version (index 0 unused).
const ECC_CODEWORDS_PER_BLOCK = [
  -1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
  26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28,
];
const ERROR_CORRECTION_BLOCKS = [
  -1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16,
  17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49,
];
/** Format information's two bits for level M. */
const LEVEL_M_BITS = 0;

const PENALTY_N1 = 3;
const PENALTY_N2 = 3;
const PENALTY_N3 = 40;
const PENALTY_N4 = 10;

/** Modules available for data and error correction in `version` (all but the function patterns). */
export function rawDataModules(version: number): number {
  let result = (16 * version + 128) * version + 64;
  if (version >= 2) {
    const align = Math.floor(version / 7) + 2;
    result -= (25 * align - 10) * align - 55;
    if (version >= 7) result -= 36;
  }
  return result;
}

/** Data codewords (bytes) of `version` at level M. */
export function dataCodewords(version: number): number {
  return Math.floor(rawDataModules(version) / 8) - ECC_CODEWORDS_PER_BLOCK[version]! * ERROR_CORRECTION_BLOCKS[version]!;
}

/** The most bytes `version` holds in byte mode at level M. */
export function byteCapacity(version: number): number {
  const header = 4 + (version <= 9 ? 8 : 16);
  return Math.floor((dataCodewords(version) * 8 - header) / 8);
}

/** Encodes `text` (as UTF-8) in the smallest version that holds it; throws if none does. */
export function encodeText(text: string, options: { readonly mask?: number } = {}): QrCode {
  return encodeBytes(utf8(text), options);
}

export function encodeBytes(data: Uint8Array, options: { readonly mask?: number } = {}): QrCode {
  let version = MIN_VERSION;
  while (byteCapacity(version) < data.length) {
    if (++version > MAX_VERSION) throw new RangeError(`too long for a QR code: ${data.length} bytes`);
  }
  const codewords = addErrorCorrection(dataBits(data, version), version);
  const size = version * 4 + 17;
  const base = new Grid(size);
  drawFunctionPatterns(base, version);
  drawCodewords(base, codewords);
  const masks = options.mask === undefined ? [0, 1, 2, 3, 4, 5, 6, 7] : [options.mask];
  let best: { grid: Grid; mask: number; penalty: number } | null = null;
  for (const mask of masks) {
    if (!Number.isInteger(mask) || mask < 0 || mask > 7) throw new RangeError(`no such mask: ${mask}`);
    const grid = base.copy();
    applyMask(grid, mask);
    drawFormatBits(grid, mask);
    const penalty = masks.length === 1 ? 0 : penaltyScore(grid);
    if (best === null || penalty < best.penalty) best = { grid, mask, penalty };
  }
  if (best === null) throw new Error('unreachable');
  return { version, size, mask: best.mask, dark: best.grid.dark };
}

class Grid {
  readonly dark: boolean[][];
  readonly fixed: boolean[][];
  constructor(readonly size: number, dark?: boolean[][], fixed?: boolean[][]) {
    this.dark = dark ?? Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
    this.fixed = fixed ?? Array.from({ length: size }, () => new Array<boolean>(size).fill(false));
  }

  copy(): Grid {
    return new Grid(this.size, this.dark.map((row) => row.slice()), this.fixed);
  }

  /** A function module (finder, timing, format…): never masked, never holds data. */
  setFixed(x: number, y: number, dark: boolean): void {
    this.dark[y]![x] = dark;
    this.fixed[y]![x] = true;
  }
}

/** Mode, count, data, terminator and padding: exactly the version's data codewords. */
function dataBits(data: Uint8Array, version: number): number[] {
  const bits: number[] = [];
  const push = (value: number, length: number): void => {
    for (let i = length - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  };
  push(0b0100, 4);
  push(data.length, version <= 9 ? 8 : 16);
  for (const byte of data) push(byte, 8);
  const capacity = dataCodewords(version) * 8;
  push(0, Math.min(4, capacity - bits.length));
  push(0, (8 - (bits.length % 8)) % 8);
  for (let pad = 0xec; bits.length < capacity; pad ^= 0xec ^ 0x11) push(pad, 8);
  const bytes: number[] = [];
  for (let i = 0; i < bits.length; i += 8) bytes.push(bits.slice(i, i + 8).reduce((acc, bit) => (acc << 1) | bit, 0));
  return bytes;
}

/** Splits the data into blocks, appends each block's Reed-Solomon codewords, interleaves. */
function addErrorCorrection(data: readonly number[], version: number): number[] {
  const blocks = ERROR_CORRECTION_BLOCKS[version]!;
  const eccLength = ECC_CODEWORDS_PER_BLOCK[version]!;
  const raw = Math.floor(rawDataModules(version) / 8);
  const shortBlocks = blocks - (raw % blocks);
  const shortLength = Math.floor(raw / blocks);
  const divisor = reedSolomonDivisor(eccLength);
  const all: number[][] = [];
  for (let i = 0, k = 0; i < blocks; i++) {
    const length = shortLength - eccLength + (i < shortBlocks ? 0 : 1);
    const block = data.slice(k, k + length);
    k += length;
    const ecc = reedSolomonRemainder(block, divisor);
    if (i < shortBlocks) block.push(0);
    all.push([...block, ...ecc]);
  }
  const result: number[] = [];
  for (let i = 0; i < all[0]!.length; i++) {
    for (let j = 0; j < all.length; j++) {
      // The padding byte of short blocks is not sent.
      if (i !== shortLength - eccLength || j >= shortBlocks) result.push(all[j]![i]!);
    }
  }
  return result;
}

/** Product in GF(2^8) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1. */
function gfMultiply(x: number, y: number): number {
  let z = 0;
  for (let i = 7; i >= 0; i--) {
    z = (z << 1) ^ ((z >>> 7) * 0x11d);
    z ^= ((y >>> i) & 1) * x;
  }
  return z;
}

function reedSolomonDivisor(degree: number): number[] {
  const result = new Array<number>(degree).fill(0);
  result[degree - 1] = 1;
  let root = 1;
  for (let i = 0; i < degree; i++) {
    for (let j = 0; j < result.length; j++) {
      result[j] = gfMultiply(result[j]!, root);
      if (j + 1 < result.length) result[j] = result[j]! ^ result[j + 1]!;
    }
    root = gfMultiply(root, 0x02);
  }
  return result;
}

function reedSolomonRemainder(data: readonly number[], divisor: readonly number[]): number[] {
  const result = new Array<number>(divisor.length).fill(0);
  for (const byte of data) {
    const factor = byte ^ result.shift()!;
    result.push(0);
    divisor.forEach((coefficient, i) => { result[i] = result[i]! ^ gfMultiply(coefficient, factor); });
  }
  return result;
}

/** Centres of the alignment patterns along one axis. */
export function alignmentPositions(version: number): number[] {
  if (version === 1) return [];
  const count = Math.floor(version / 7) + 2;
  const step = Math.floor((version * 8 + count * 3 + 5) / (count * 4 - 4)) * 2;
  const result = [6];
  for (let pos = version * 4 + 10; result.length < count; pos -= step) result.splice(1, 0, pos);
  return result;
}

function drawFunctionPatterns(grid: Grid, version: number): void {
  const size = grid.size;
  for (let i = 0; i < size; i++) {
    grid.setFixed(6, i, i % 2 === 0);
    grid.setFixed(i, 6, i % 2 === 0);
  }
  for (const [cx, cy] of [[3, 3], [size - 4, 3], [3, size - 4]] as const) {
    for (let dy = -4; dy <= 4; dy++) {
      for (let dx = -4; dx <= 4; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        const distance = Math.max(Math.abs(dx), Math.abs(dy));
        if (x >= 0 && x < size && y >= 0 && y < size) grid.setFixed(x, y, distance !== 2 && distance !== 4);
      }
    }
  }
  const positions = alignmentPositions(version);
  const last = positions.length - 1;
  positions.forEach((cx, i) => positions.forEach((cy, j) => {
    // Not over the three finder patterns.
    if ((i === 0 && j === 0) || (i === 0 && j === last) || (i === last && j === 0)) return;
    for (let dy = -2; dy <= 2; dy++) {
      for (let dx = -2; dx <= 2; dx++) grid.setFixed(cx + dx, cy + dy, Math.max(Math.abs(dx), Math.abs(dy)) !== 1);
    }
  }));
  drawFormatBits(grid, 0); // reserves the format areas; drawn again once the mask is chosen
  if (version >= 7) {
    let rem = version;
    for (let i = 0; i < 12; i++) rem = (rem << 1) ^ ((rem >>> 11) * 0x1f25);
    const bits = (version << 12) | rem;
    for (let i = 0; i < 18; i++) {
      const bit = ((bits >>> i) & 1) !== 0;
      const a = size - 11 + (i % 3);
      const b = Math.floor(i / 3);
      grid.setFixed(a, b, bit);
      grid.setFixed(b, a, bit);
    }
  }
}

/** The 15 format bits for level M and `mask` (BCH code, XOR 0x5412). */
export function formatBits(mask: number): number {
  const data = (LEVEL_M_BITS << 3) | mask;
  let rem = data;
  for (let i = 0; i < 10; i++) rem = (rem << 1) ^ ((rem >>> 9) * 0x537);
  return ((data << 10) | rem) ^ 0x5412;
}

function drawFormatBits(grid: Grid, mask: number): void {
  const bits = formatBits(mask);
  const bit = (i: number): boolean => ((bits >>> i) & 1) !== 0;
  const size = grid.size;
  for (let i = 0; i <= 5; i++) grid.setFixed(8, i, bit(i));
  grid.setFixed(8, 7, bit(6));
  grid.setFixed(8, 8, bit(7));
  grid.setFixed(7, 8, bit(8));
  for (let i = 9; i < 15; i++) grid.setFixed(14 - i, 8, bit(i));
  for (let i = 0; i < 8; i++) grid.setFixed(size - 1 - i, 8, bit(i));
  for (let i = 8; i < 15; i++) grid.setFixed(8, size - 15 + i, bit(i));
  grid.setFixed(8, size - 8, true); // the dark module
}

/** Places the codewords in the zigzag order, two columns at a time from the bottom right. */
function drawCodewords(grid: Grid, codewords: readonly number[]): void {
  const size = grid.size;
  let i = 0;
  for (let right = size - 1; right >= 1; right -= 2) {
    if (right === 6) right = 5; // the vertical timing pattern
    for (let vert = 0; vert < size; vert++) {
      for (let j = 0; j < 2; j++) {
        const x = right - j;
        const upward = ((right + 1) & 2) === 0;
        const y = upward ? size - 1 - vert : vert;
        if (!grid.fixed[y]![x] && i < codewords.length * 8) {
          grid.dark[y]![x] = ((codewords[i >>> 3]! >>> (7 - (i & 7))) & 1) !== 0;
          i++;
        }
        // Remainder bits (0 to 7) stay light.
      }
    }
  }
}

function maskBit(mask: number, x: number, y: number): boolean {
  switch (mask) {
    case 0: return (x + y) % 2 === 0;
    case 1: return y % 2 === 0;
    case 2: return x % 3 === 0;
    case 3: return (x + y) % 3 === 0;
    case 4: return (Math.floor(x / 3) + Math.floor(y / 2)) % 2 === 0;
    case 5: return ((x * y) % 2) + ((x * y) % 3) === 0;
    case 6: return (((x * y) % 2) + ((x * y) % 3)) % 2 === 0;
    default: return (((x + y) % 2) + ((x * y) % 3)) % 2 === 0;
  }
}

function applyMask(grid: Grid, mask: number): void {
  for (let y = 0; y < grid.size; y++) {
    for (let x = 0; x < grid.size; x++) {
      if (!grid.fixed[y]![x] && maskBit(mask, x, y)) grid.dark[y]![x] = !grid.dark[y]![x];
    }
  }
}

/** The standard's four penalty rules; the mask with the lowest score is used. */
export function penaltyScore(grid: { readonly size: number; readonly dark: readonly (readonly boolean[])[] }): number {
  const size = grid.size;
  const at = (x: number, y: number): boolean => grid.dark[y]![x]!;
  let result = 0;
  for (const horizontal of [true, false]) {
    for (let a = 0; a < size; a++) {
      let runColor = false;
      let run = 0;
      const history = [0, 0, 0, 0, 0, 0, 0];
      for (let b = 0; b < size; b++) {
        const color = horizontal ? at(b, a) : at(a, b);
        if (color === runColor) {
          run++;
          if (run === 5) result += PENALTY_N1;
          else if (run > 5) result++;
        } else {
          addRun(history, run, size);
          if (!runColor) result += finderLikePatterns(history) * PENALTY_N3;
          runColor = color;
          run = 1;
        }
      }
      // The light border after the last run.
      if (runColor) {
        addRun(history, run, size);
        run = 0;
      }
      addRun(history, run + size, size);
      result += finderLikePatterns(history) * PENALTY_N3;
    }
  }
  for (let y = 0; y < size - 1; y++) {
    for (let x = 0; x < size - 1; x++) {
      const color = at(x, y);
      if (color === at(x + 1, y) && color === at(x, y + 1) && color === at(x + 1, y + 1)) result += PENALTY_N2;
    }
  }
  let dark = 0;
  for (const row of grid.dark) for (const module of row) if (module) dark++;
  const total = size * size;
  const k = Math.ceil(Math.abs(dark * 20 - total * 10) / total) - 1;
  result += k * PENALTY_N4;
  return result;
}

/** Pushes a run length into the newest-first history; the first (light) run includes the border. */
function addRun(history: number[], run: number, size: number): void {
  history.pop();
  history.unshift(history[0] === 0 ? run + size : run);
}

/** 1:1:3:1:1 (dark:light:dark:light:dark) with four light modules on one side. */
function finderLikePatterns(history: readonly number[]): number {
  const n = history[1]!;
  const core = n > 0 && history[2] === n && history[3] === n * 3 && history[4] === n && history[5] === n;
  return (core && history[0]! >= n * 4 && history[6]! >= n ? 1 : 0) + (core && history[6]! >= n * 4 && history[0]! >= n ? 1 : 0);
}
