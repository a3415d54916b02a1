//! Playing a WebM video while it is still arriving: a MediaSource fed with the decrypted
//! chunks in order. Each chunk was authenticated on its own (STREAM), so what plays is
//! what the sender sent; if the transfer later fails, the card removes the video. When
//! the browser cannot do this (no MediaSource, a codec it would not take, its buffer
//! full, a decoding error), the player reports failure and the file is shown once it has
//! fully arrived, from a Blob, as any other video.

import type { Bytes } from '../encoding';
import { webmCodecs } from '../webm';
import { h } from './dom';

/** Larger videos are only played once complete: MediaSource buffers are bounded (about 150 MB in Chromium). */
export const STREAM_MAX_BYTES = 100 * 1024 * 1024;

export class StreamingVideo {
  readonly video: HTMLVideoElement;
  readonly url: string;
  readonly #source: MediaSource;
  readonly #type: string;
  readonly #failed: () => void;
  #buffer: SourceBuffer | null = null;
  #pending: Bytes[] = [];
  #ending = false;
  #broken = false;

  /** Whether a file of this type and size could play while it arrives (its first bytes decide). */
  static candidate(mime: string, size: number): boolean {
    return mime === 'video/webm' && size <= STREAM_MAX_BYTES && typeof MediaSource !== 'undefined';
  }

  /**
   * A player for a video whose first bytes are `first`, or null when it cannot be played
   * while arriving. `failed` is called (once) if playing it this way stops working.
   */
  static create(mime: string, size: number, first: Bytes, name: string, failed: () => void): StreamingVideo | null {
    if (!StreamingVideo.candidate(mime, size)) return null;
    const codecs = webmCodecs(first);
    if (codecs === null) return null;
    const type = `video/webm; codecs="${codecs}"`;
    if (!MediaSource.isTypeSupported(type)) return null;
    return new StreamingVideo(type, name, failed);
  }

  private constructor(type: string, name: string, failed: () => void) {
    this.#type = type;
    this.#failed = failed;
    this.#source = new MediaSource();
    this.url = URL.createObjectURL(this.#source);
    this.video = h('video', { class: 'preview', attrs: { src: this.url, controls: true, 'aria-label': name, 'data-streaming': 'true' } });
    this.#source.addEventListener('sourceopen', () => this.#open(), { once: true });
    this.video.addEventListener('error', () => this.#fail());
  }

  get broken(): boolean {
    return this.#broken;
  }

  /** More of the file, in order. */
  push(parts: readonly Bytes[]): void {
    if (this.#broken) return;
    this.#pending.push(...parts);
    this.#pump();
  }

  /** The whole file arrived and was verified: let the video know where it ends. */
  end(): void {
    this.#ending = true;
    this.#pump();
  }

  /** Stops feeding the video (the card removes it). */
  close(): void {
    this.#broken = true;
    this.#pending = [];
  }

  #open(): void {
    try {
      const buffer = this.#source.addSourceBuffer(this.#type);
      buffer.addEventListener('updateend', () => this.#pump());
      buffer.addEventListener('error', () => this.#fail());
      this.#buffer = buffer;
    } catch {
      this.#fail();
      return;
    }
    this.#pump();
  }

  #pump(): void {
    const buffer = this.#buffer;
    if (this.#broken || buffer === null || buffer.updating || this.#source.readyState !== 'open') return;
    const next = this.#pending.shift();
    try {
      if (next !== undefined) buffer.appendBuffer(next);
      else if (this.#ending) this.#source.endOfStream();
    } catch {
      // QuotaExceededError (the buffer is full) or InvalidStateError (the data was refused).
      this.#fail();
    }
  }

  #fail(): void {
    if (this.#broken) return;
    this.close();
    this.#failed();
  }
}
