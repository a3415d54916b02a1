// The WebM track reader that decides whether a video can play while it arrives.
import { describe, expect, it } from 'vitest';
import { webmCodecs } from '../src/webm';

/** An EBML element: id bytes, then its size as an 8-byte vint (or unknown), then data. */
function el(id: number[], ...data: (number[] | Uint8Array)[]): number[] {
  const body = data.flatMap((part) => Array.from(part));
  const size = [0x01, 0, 0, 0, (body.length >>> 24) & 0xff, (body.length >>> 16) & 0xff, (body.length >>> 8) & 0xff, body.length & 0xff];
  return [...id, ...size, ...body];
}
function unknownSize(id: number[], ...data: number[][]): number[] {
  return [...id, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...data.flat()];
}
const ascii = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0));

const header = (docType = 'webm'): number[] => el([0x1a, 0x45, 0xdf, 0xa3], el([0x42, 0x86], [1]), el([0x42, 0x82], ascii(docType)));
const track = (codec: string): number[] => el([0xae], el([0xd7], [1]), el([0x86], ascii(codec)), el([0x83], [1]));
const tracks = (...codecs: string[]): number[] => el([0x16, 0x54, 0xae, 0x6b], ...codecs.map(track));
const info = el([0x15, 0x49, 0xa9, 0x66], el([0x2a, 0xd7, 0xb1], [0x0f, 0x42, 0x40]));
const cluster = el([0x1f, 0x43, 0xb6, 0x75], el([0xe7], [0]), el([0xa3], new Uint8Array(100)));

function file(...parts: number[][]): Uint8Array {
  return new Uint8Array(parts.flat());
}

describe('webmCodecs', () => {
  it('reads the codecs of every track', () => {
    expect(webmCodecs(file(header(), el([0x18, 0x53, 0x80, 0x67], info, tracks('V_VP8'), cluster)))).toBe('vp8');
    expect(webmCodecs(file(header(), el([0x18, 0x53, 0x80, 0x67], info, tracks('V_VP9', 'A_OPUS'), cluster)))).toBe('vp9,opus');
  });

  it('reads a live recording (segment and clusters of unknown size)', () => {
    const bytes = file(header(), unknownSize([0x18, 0x53, 0x80, 0x67], info, tracks('V_VP8', 'A_VORBIS'), unknownSize([0x1f, 0x43, 0xb6, 0x75], [0xe7, 0x81, 0x00])));
    expect(webmCodecs(bytes)).toBe('vp8,vorbis');
  });

  it('needs the whole track list', () => {
    const whole = file(header(), el([0x18, 0x53, 0x80, 0x67], info, tracks('V_VP8', 'A_OPUS'), cluster));
    const end = header().length + 12 + info.length + tracks('V_VP8', 'A_OPUS').length;
    expect(webmCodecs(whole.subarray(0, end))).toBe('vp8,opus');
    for (const cut of [0, 3, 20, end - 1]) expect(webmCodecs(whole.subarray(0, cut))).toBeNull();
  });

  it('refuses other containers, unknown codecs and media before tracks', () => {
    expect(webmCodecs(file(header('matroska'), el([0x18, 0x53, 0x80, 0x67], tracks('V_VP8'))))).toBeNull();
    expect(webmCodecs(file(header(), el([0x18, 0x53, 0x80, 0x67], tracks('V_MPEG4/ISO/AVC'))))).toBeNull();
    expect(webmCodecs(file(header(), el([0x18, 0x53, 0x80, 0x67], tracks('V_VP8', 'A_AAC'))))).toBeNull();
    expect(webmCodecs(file(header(), el([0x18, 0x53, 0x80, 0x67], cluster, tracks('V_VP8'))))).toBeNull();
    expect(webmCodecs(file(header(), el([0x18, 0x53, 0x80, 0x67], el([0x16, 0x54, 0xae, 0x6b]))))).toBeNull();
  });

  it('survives garbage', () => {
    expect(webmCodecs(new Uint8Array(0))).toBeNull();
    expect(webmCodecs(new Uint8Array(1000))).toBeNull();
    expect(webmCodecs(new Uint8Array(1000).fill(0xff))).toBeNull();
    const mp4 = new Uint8Array([0, 0, 0, 0x20, ...ascii('ftypisom'), ...new Array<number>(200).fill(0)]);
    expect(webmCodecs(mp4)).toBeNull();
    let seed = 1;
    for (let round = 0; round < 200; round++) {
      const noise = new Uint8Array(300).map(() => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff);
      noise.set(header().slice(0, 4));
      expect(() => webmCodecs(noise)).not.toThrow();
    }
    // A huge codec id string is not read (nor spread onto the stack).
    expect(webmCodecs(file(header(), el([0x18, 0x53, 0x80, 0x67], el([0x16, 0x54, 0xae, 0x6b], el([0xae], el([0x86], new Uint8Array(500_000)))))))).toBeNull();
  });
});
