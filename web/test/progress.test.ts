// File progress in words: amounts, percentage, speed over the recent past, time left.
import { describe, expect, it } from 'vitest';
import { RateMeter, bytesOfParts, progressText, timeLeftText } from '../src/progress';

const MiB = 1024 * 1024;

describe('progressText', () => {
  it('gives amount, percentage, speed and time left', () => {
    expect(progressText(3 * MiB, 12 * MiB, MiB)).toBe('3.0 MiB of 12 MiB (25%) · 1.0 MiB/s · 9 s left');
    expect(progressText(512 * 1024, 20 * MiB, 2.5 * MiB)).toBe('512 KiB of 20 MiB (2%) · 2.5 MiB/s · 8 s left');
  });

  it('says no speed before there is one, nothing left when done, and a stall', () => {
    expect(progressText(0, 12 * MiB, null)).toBe('0 B of 12 MiB (0%)');
    expect(progressText(12 * MiB, 12 * MiB, MiB)).toBe('12 MiB of 12 MiB (100%)');
    expect(progressText(MiB, 12 * MiB, 0)).toBe('1.0 MiB of 12 MiB (8%) · stalled');
    expect(progressText(12 * MiB - 1, 12 * MiB, MiB)).toMatch(/\(99%\)/);
  });
});

describe('timeLeftText', () => {
  it('reads as people say it', () => {
    expect(timeLeftText(1)).toBe('1 s');
    expect(timeLeftText(9_000)).toBe('9 s');
    expect(timeLeftText(150_000)).toBe('2 min 30 s');
    expect(timeLeftText(120_000)).toBe('2 min');
    expect(timeLeftText(725_000)).toBe('12 min');
    expect(timeLeftText(7_500_000)).toBe('2 h 5 min');
  });
});

describe('RateMeter', () => {
  it('measures over the last few seconds', () => {
    let now = 0;
    const meter = new RateMeter(() => now);
    meter.sample(0);
    expect(meter.bytesPerSecond).toBeNull();
    now = 1000;
    meter.sample(MiB);
    expect(meter.bytesPerSecond).toBe(MiB);
    // It slows down: after a while only the recent, slower rate counts.
    for (let second = 2; second <= 10; second++) {
      now = second * 1000;
      meter.sample(MiB + (second - 1) * 100_000);
    }
    expect(meter.bytesPerSecond).toBeCloseTo(100_000, -3);
  });
});

describe('bytesOfParts', () => {
  it('counts the last, smaller part as what is left', () => {
    expect(bytesOfParts(2, 256 * 1024, 600_000)).toBe(512 * 1024);
    expect(bytesOfParts(3, 256 * 1024, 600_000)).toBe(600_000);
  });
});
