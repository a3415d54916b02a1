//! Just enough of WebM (Matroska's EBML) to play a video while it is still arriving: the
//! codecs of its tracks, read from the start of the file, which MediaSource needs before
//! it accepts any data. Input is untrusted: every read is bounds-checked, and anything
//! unexpected means "unknown" (the file is then played once it has fully arrived).

const EBML_HEADER = 0x1a45dfa3;
const DOC_TYPE = 0x4282;
const SEGMENT = 0x18538067;
const TRACKS = 0x1654ae6b;
const TRACK_ENTRY = 0xae;
const CODEC_ID = 0x86;
const CLUSTER = 0x1f43b675;

/** Matroska codec ids MediaSource can take in WebM, as MIME codec parameters. */
const CODECS: ReadonlyMap<string, string> = new Map([
  ['V_VP8', 'vp8'],
  ['V_VP9', 'vp9'],
  ['A_OPUS', 'opus'],
  ['A_VORBIS', 'vorbis'],
]);

interface Element {
  readonly id: number;
  /** Where the element's data starts. */
  readonly start: number;
  /** Where it ends, clamped to the bytes at hand (their end for an unknown-size element). */
  readonly end: number;
  readonly unknownSize: boolean;
  /** All of its data is within the bytes at hand. */
  readonly complete: boolean;
}

/** Reads an element header at `offset`; null when the bytes end or are not EBML. */
function readElement(bytes: Uint8Array, offset: number): Element | null {
  const first = bytes[offset];
  if (first === undefined || first === 0) return null;
  const idLength = Math.clz32(first) - 23; // 1..4 for a valid id
  if (idLength > 4 || offset + idLength > bytes.length) return null;
  let id = 0;
  for (let i = 0; i < idLength; i++) id = id * 256 + (bytes[offset + i] ?? 0);
  const sizeAt = offset + idLength;
  const sizeFirst = bytes[sizeAt];
  if (sizeFirst === undefined || sizeFirst === 0) return null;
  const sizeLength = Math.clz32(sizeFirst) - 23; // 1..8
  if (sizeAt + sizeLength > bytes.length) return null;
  let size = sizeFirst & (0xff >> sizeLength);
  let allOnes = size === 0xff >> sizeLength;
  for (let i = 1; i < sizeLength; i++) {
    const byte = bytes[sizeAt + i] ?? 0;
    size = size * 256 + byte;
    allOnes &&= byte === 0xff;
  }
  const start = sizeAt + sizeLength;
  if (allOnes) return { id, start, end: bytes.length, unknownSize: true, complete: false };
  return { id, start, end: Math.min(bytes.length, start + size), unknownSize: false, complete: start + size <= bytes.length };
}

/** A short ASCII string element (doc type, codec id); longer ones are not what is looked for. */
function text(bytes: Uint8Array, element: Element): string {
  if (!element.complete || element.end - element.start > 32) return '';
  return String.fromCharCode(...bytes.subarray(element.start, element.end)).replace(/\0+$/, '');
}

/** The children of `parent` that lie completely within the bytes at hand. */
function* children(bytes: Uint8Array, parent: { readonly start: number; readonly end: number }): Generator<Element> {
  let offset = parent.start;
  while (offset < parent.end) {
    const element = readElement(bytes, offset);
    if (element === null) return;
    yield element;
    if (element.unknownSize) return;
    offset = element.end;
  }
}

/**
 * The MIME codecs parameter of a WebM file (e.g. `vp8,opus`) from its first bytes, or
 * null when they are not WebM, do not reach the end of the track list, or name a codec
 * this client would not stream.
 */
export function webmCodecs(bytes: Uint8Array): string | null {
  const header = readElement(bytes, 0);
  if (header === null || header.id !== EBML_HEADER || !header.complete) return null;
  let docType: string | null = null;
  for (const element of children(bytes, header)) if (element.id === DOC_TYPE) docType = text(bytes, element);
  if (docType !== 'webm') return null;
  const segment = readElement(bytes, header.end);
  if (segment === null || segment.id !== SEGMENT) return null;
  for (const element of children(bytes, segment)) {
    if (element.id === CLUSTER) return null; // media data before any track list
    if (element.id !== TRACKS) continue;
    // The track list must be complete, or a track could be missing.
    if (!element.complete) return null;
    const codecs: string[] = [];
    for (const entry of children(bytes, element)) {
      if (entry.id !== TRACK_ENTRY) continue;
      let codec: string | undefined;
      for (const field of children(bytes, entry)) if (field.id === CODEC_ID) codec = CODECS.get(text(bytes, field));
      if (codec === undefined) return null;
      if (!codecs.includes(codec)) codecs.push(codec);
    }
    return codecs.length > 0 ? codecs.join(',') : null;
  }
  return null;
}
