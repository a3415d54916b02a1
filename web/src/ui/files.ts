//! Encrypted file sharing in the chat: files chosen, dropped or pasted are sent one after
//! another (transfer.ts does the crypto and pacing) with a progress card and Cancel (the
//! others are told at once, with a sealed `file-cancel`); files from others are received
//! into memory with a progress card, then shown inline (images, video, audio, from Blob
//! URLs) or offered with a Save button. A file whose sender cancels it says so and lets go
//! of what had arrived; parts of a file announced before this person joined are dropped
//! with one plain line. Every Blob URL is revoked when its card leaves the timeline or
//! the room is left.

import type { ConnectionState } from '../connection';
import { type FileBody, encodeBody } from '../content';
import { byteSize } from '../format';
import { RateMeter, bytesOfParts, progressText } from '../progress';
import type { IncomingChunk } from '../protocol';
import type { Author, FileEvent, RoomSession } from '../room';
import { IncomingFile, newFileId, planFile, previewKind, receiveErrorText, sendFile } from '../transfer';
import { type ChatView, messageMeta } from './chat';
import { h, replaceChildren } from './dom';
import { StreamingVideo } from './stream';

/** Without a new chunk for this long, an incoming file is declared stopped. */
const STALL_MS = 30_000;
const STALL_CHECK_MS = 5000;
/** Files received at the same time; more are refused (memory is the bound). */
const MAX_CONCURRENT_INCOMING = 8;
/** Unannounced files already reported (by sender and file id), bounded. */
const MAX_ORPHANS = 256;

interface IncomingEntry {
  readonly transfer: IncomingFile;
  readonly card: FileCard;
  lastActivity: number;
  /** Chunks of one file are handled one after another. */
  queue: Promise<void>;
  done: boolean;
  /** A video playing while it arrives; null before its first chunk, or when it cannot be played so. */
  stream: StreamingVideo | null;
  /** Whether to try playing it while it arrives (a WebM video in several chunks, until that fails). */
  tryStream: boolean;
  /** The verified file, once complete. */
  blob: Blob | null;
}

export class FileSharing {
  readonly #view: ChatView;
  #session: RoomSession | null = null;
  readonly #incoming = new Map<string, IncomingEntry>();
  readonly #orphans = new Set<string>();
  readonly #urls = new Map<string, string[]>();
  readonly #outgoing = new Set<AbortController>();
  #sendQueue: Promise<void> = Promise.resolve();
  #stallTimer: ReturnType<typeof setInterval> | null = null;
  #nextId = 0;

  constructor(view: ChatView) {
    this.#view = view;
    view.onFiles((files) => { for (const file of files) this.#queueSend(file); });
    view.onEvicted((id) => this.#revoke(id));
  }

  attach(session: RoomSession): void {
    this.#session = session;
  }

  connection(state: ConnectionState): void {
    if (state.kind === 'closed') this.#closeAll();
  }

  handle(event: FileEvent): void {
    if (event.kind === 'announced') this.#onAnnounced(event.body, event.author, event.from, event.ts);
    else if (event.kind === 'chunk') this.#onChunk(event.chunk);
    else if (event.kind === 'cancelled') this.#onCancelled(event.from, event.file);
    else this.#onGap();
  }

  // ---- Sending -------------------------------------------------------------------------------

  #queueSend(file: File): void {
    const id = this.#newId();
    const self = this.#session?.self ?? { name: 'You', fingerprint: '', self: true };
    const card = new FileCard(self, Date.now(), file.name || 'pasted file', file.size);
    this.#view.addElement(id, card.li, null);
    const plan = planFile(file.size, this.#session?.limits ?? null);
    if (!plan.ok) {
      card.error(`Not sent: ${plan.reason} (up to ${limitText(file.size, plan.maxBytes)}).`);
      return;
    }
    const abort = new AbortController();
    card.chunking(plan.chunkSize, file.size);
    card.status('Waiting to send…');
    card.cancellable(() => abort.abort());
    this.#sendQueue = this.#sendQueue.then(() => this.#send(id, file, card, abort));
  }

  async #send(id: string, file: File, card: FileCard, abort: AbortController): Promise<void> {
    const session = this.#session;
    if (abort.signal.aborted) {
      card.stopped('Cancelled before it was sent.');
      return;
    }
    if (session === null || session.connection.state.kind !== 'online') {
      card.error('Not sent: not connected.');
      return;
    }
    this.#outgoing.add(abort);
    card.status('Encrypting…');
    try {
      const result = await sendFile(file, { name: file.name || 'pasted file', mime: file.type || 'application/octet-stream', id: newFileId() },
        session.limits, {
          sendBody: async (body) => session.sendBody(encodeBody(body)),
          sendChunk: (fileId, seq, data) => session.sendChunk(fileId, seq, data),
        }, abort.signal, {
          announced: (ts) => card.time(ts),
          progress: (sent, total) => card.progress(sent, total, `Sending… ${sent} of ${total} parts`, true),
        });
      if (result.ok) {
        card.done('Sent, end-to-end encrypted.');
        const kind = previewKind(file.type);
        if (kind !== null) this.#preview(id, card, file, kind, file.name);
      } else {
        if (result.cancelled) card.stopped('Cancelled; the others see it as cancelled.');
        else card.error(`Not sent: ${result.reason}.`);
      }
    } catch (e: unknown) {
      card.error(`Not sent: ${e instanceof Error ? e.message : String(e)}.`);
    } finally {
      this.#outgoing.delete(abort);
    }
  }

  // ---- Receiving -----------------------------------------------------------------------------

  #onAnnounced(body: FileBody, author: Author, from: string, ts: number): void {
    const key = `${from}|${body.id}`;
    if (this.#incoming.has(key)) return;
    const id = this.#newId();
    const card = new FileCard(author, ts, body.name, body.size);
    this.#view.addElement(id, card.li, { name: author.name, text: `sent a file: ${body.name}` });
    const active = Array.from(this.#incoming.values()).filter((entry) => !entry.done).length;
    const transfer = active >= MAX_CONCURRENT_INCOMING
      ? 'too many files at once'
      : IncomingFile.start(body, this.#session?.limits ?? null);
    if (typeof transfer === 'string') {
      card.error(`Not received: ${transfer}.`);
      return;
    }
    card.chunking(body.chunkSize, body.size);
    card.progress(0, body.chunks, 'Receiving…');
    card.cancellable(() => this.#cancelIncoming(key));
    const entry: IncomingEntry = {
      transfer, card, lastActivity: Date.now(), queue: Promise.resolve(), done: false,
      stream: null, tryStream: body.chunks > 1 && StreamingVideo.candidate(body.mime, body.size), blob: null,
    };
    this.#incoming.set(key, entry);
    card.itemId = id;
    this.#startStallTimer();
  }

  #onChunk(chunk: IncomingChunk): void {
    const key = `${chunk.from}|${chunk.file}`;
    const entry = this.#incoming.get(key);
    if (entry === undefined) {
      this.#orphan(key, chunk.from, chunk.file);
      return;
    }
    if (entry.done) return;
    entry.lastActivity = Date.now();
    entry.queue = entry.queue.then(async () => {
      if (entry.done) return;
      try {
        if (!(await entry.transfer.accept(chunk.seq, chunk.data))) return;
        const { received, body } = { received: entry.transfer.received, body: entry.transfer.body };
        entry.card.progress(received, body.chunks, `Receiving… ${received} of ${body.chunks} parts`, true);
        this.#feedStream(entry);
        if (!entry.transfer.complete) return;
        entry.done = true;
        entry.card.status('Checking…');
        const bytes = await entry.transfer.assemble();
        const kind = previewKind(body.mime);
        // Only media shown inline keep their type; anything else is a plain download,
        // so that no received HTML or SVG can ever be opened as a page of this origin.
        const blob = new Blob([bytes], { type: kind === null ? 'application/octet-stream' : body.mime });
        entry.blob = blob;
        entry.card.done('Received, end-to-end encrypted; checksum verified.');
        const id = entry.card.itemId ?? key;
        if (entry.stream !== null && !entry.stream.broken) {
          // Already playing: tell the player where the file ends and offer to save it.
          entry.stream.end();
          entry.card.offerSave(this.#objectUrl(id, blob), body.name);
        } else {
          this.#preview(id, entry.card, blob, kind, body.name);
        }
      } catch (e: unknown) {
        entry.done = true;
        entry.stream?.close();
        entry.transfer.release();
        entry.card.error(`This file could not be received: ${receiveErrorText(e)}.`);
      }
    });
  }

  /**
   * The sender cancelled its file: say so at once and let go of what arrived. The entry
   * stays (done) so that chunks still on their way are dropped without a word.
   */
  #onCancelled(from: string, file: string): void {
    const key = `${from}|${file}`;
    const entry = this.#incoming.get(key);
    if (entry === undefined) {
      // A file announced before this person joined: its last parts, if any, need no line.
      this.#rememberOrphan(key);
      return;
    }
    if (entry.done) return;
    entry.done = true;
    entry.tryStream = false;
    entry.stream?.close();
    entry.transfer.release();
    entry.card.stopped(`Cancelled by the sender (${entry.transfer.received} of ${entry.transfer.body.chunks} parts had arrived).`);
  }

  /**
   * This person cancelled a file they were receiving: stop decrypting it and let go of
   * what arrived (nothing of it is kept or shown). Only here: the sender and the others
   * are not affected, and its remaining parts are dropped as they come.
   */
  #cancelIncoming(key: string): void {
    const entry = this.#incoming.get(key);
    if (entry === undefined || entry.done) return;
    entry.done = true;
    entry.tryStream = false;
    entry.stream?.close();
    entry.transfer.release();
    const id = entry.card.itemId;
    if (id !== null) this.#revoke(id);
    entry.card.stopped(`You cancelled it (${entry.transfer.received} of ${entry.transfer.body.chunks} parts had arrived); nothing of it was kept.`);
  }

  /** Parts were lost while this person was offline: what is still arriving cannot complete. */
  #onGap(): void {
    for (const entry of this.#incoming.values()) {
      if (entry.done) continue;
      entry.done = true;
      entry.stream?.close();
      entry.transfer.release();
      entry.card.error(`Incomplete: the connection was lost (${entry.transfer.received} of ${entry.transfer.body.chunks} parts arrived).`);
    }
  }

  /** Plays a WebM video while it arrives, where the browser can; else it is shown once complete. */
  #feedStream(entry: IncomingEntry): void {
    if (!entry.tryStream) return;
    const parts = entry.transfer.takeInOrder();
    const first = parts[0];
    if (first === undefined) return;
    if (entry.stream === null) {
      const { body } = entry.transfer;
      const stream = StreamingVideo.create(body.mime, body.size, first, body.name, () => this.#streamFailed(entry));
      if (stream === null) {
        entry.tryStream = false;
        return;
      }
      entry.stream = stream;
      const id = entry.card.itemId;
      if (id !== null) this.#urls.set(id, [...(this.#urls.get(id) ?? []), stream.url]);
      const stick = this.#view.isNearBottom();
      entry.card.showStream(stream.video, () => { if (stick) this.#view.scrollToBottom(); });
      if (stick) this.#view.scrollToBottom();
    }
    entry.stream.push(parts);
  }

  /** Playing while arriving stopped working: show the video from its Blob once complete instead. */
  #streamFailed(entry: IncomingEntry): void {
    entry.tryStream = false;
    if (entry.stream !== null) URL.revokeObjectURL(entry.stream.url);
    entry.card.clearMedia();
    const { body } = entry.transfer;
    const id = entry.card.itemId;
    if (entry.blob !== null && id !== null && entry.card.li.isConnected) this.#preview(id, entry.card, entry.blob, 'video', body.name);
  }

  /**
   * A chunk of a file this person never saw announced by that sender, dropped at once
   * (nothing of it is kept). Usually the file was announced before they joined: one plain
   * line per file. Under the file id of a file someone else announced it is another member
   * trying to slip parts into that file (transfers are keyed by sender): a warning, once.
   */
  #orphan(key: string, from: string, file: string): void {
    if (!this.#rememberOrphan(key)) return;
    const id = this.#newId();
    const forged = Array.from(this.#incoming.keys()).some((other) => other !== key && other.endsWith(`|${file}`));
    if (!forged) {
      this.#view.addElement(id, h('li', { class: ['alert', 'file-before-join'], attrs: { 'data-id': id } },
        h('span', { class: 'alert-text', text: 'A file was being sent before you joined.' })), null);
      return;
    }
    const name = this.#session?.author(from)?.name ?? 'Someone';
    this.#view.addElement(id, h('li', { class: ['alert', 'warning'], attrs: { 'data-id': id } },
      h('span', { class: 'alert-text', text: `Parts of a file from ${name} arrived without its announcement, under the id of another member’s file; they were ignored.` })), null);
  }

  /** Remembers an unannounced file (bounded); false if it was already known. */
  #rememberOrphan(key: string): boolean {
    if (this.#orphans.has(key)) return false;
    this.#orphans.add(key);
    if (this.#orphans.size > MAX_ORPHANS) {
      const oldest = this.#orphans.values().next();
      if (oldest.done !== true) this.#orphans.delete(oldest.value);
    }
    return true;
  }

  #startStallTimer(): void {
    if (this.#stallTimer !== null) return;
    this.#stallTimer = setInterval(() => {
      const now = Date.now();
      let active = 0;
      for (const entry of this.#incoming.values()) {
        if (entry.done) continue;
        if (now - entry.lastActivity > STALL_MS) {
          entry.done = true;
          entry.stream?.close();
          entry.transfer.release();
          entry.card.error(`The transfer stopped before it was complete (${entry.transfer.received} of ${entry.transfer.body.chunks} parts): cancelled by the sender, or the connection was lost.`);
        } else {
          active++;
        }
      }
      if (active === 0 && this.#stallTimer !== null) {
        clearInterval(this.#stallTimer);
        this.#stallTimer = null;
      }
    }, STALL_CHECK_MS);
  }

  // ---- Blob URLs ------------------------------------------------------------------------------

  #objectUrl(id: string, blob: Blob): string {
    const url = URL.createObjectURL(blob);
    this.#urls.set(id, [...(this.#urls.get(id) ?? []), url]);
    return url;
  }

  #preview(id: string, card: FileCard, blob: Blob, kind: 'image' | 'video' | 'audio' | null, name: string): void {
    const url = this.#objectUrl(id, blob);
    const stick = this.#view.isNearBottom();
    card.show(url, kind, name, () => { if (stick) this.#view.scrollToBottom(); });
    if (stick) this.#view.scrollToBottom();
  }

  #revoke(id: string): void {
    // A video still arriving whose card left the timeline is no longer fed.
    for (const entry of this.#incoming.values()) {
      if (entry.card.itemId !== id) continue;
      entry.tryStream = false;
      entry.stream?.close();
    }
    for (const url of this.#urls.get(id) ?? []) URL.revokeObjectURL(url);
    this.#urls.delete(id);
  }

  #closeAll(): void {
    for (const abort of this.#outgoing) abort.abort();
    for (const entry of this.#incoming.values()) entry.stream?.close();
    for (const id of Array.from(this.#urls.keys())) this.#revoke(id);
    this.#incoming.clear();
    if (this.#stallTimer !== null) clearInterval(this.#stallTimer);
    this.#stallTimer = null;
  }

  #newId(): string {
    return `file-${++this.#nextId}`;
  }
}

/** The largest size in words; in exact bytes too when rounding would make it look like `size`. */
function limitText(size: number, maxBytes: number): string {
  const rounded = byteSize(maxBytes);
  return rounded === byteSize(size) ? `${rounded}, ${maxBytes.toLocaleString('en')} bytes` : rounded;
}

/** The timeline card of one file, sent or received. */
class FileCard {
  readonly li: HTMLLIElement;
  itemId: string | null = null;
  readonly #author: Author;
  readonly #meta: HTMLElement;
  readonly #bar: HTMLProgressElement;
  readonly #status: HTMLElement;
  readonly #actions: HTMLElement;
  readonly #media: HTMLElement;
  readonly #name: string;
  /** Bytes and speed, beside the parts: chunk size and file size, and the speed measured so far. */
  readonly #detail: HTMLElement;
  #chunkSize = 0;
  #size = 0;
  readonly #rate = new RateMeter();

  constructor(author: Author, ts: number, name: string, size: number) {
    this.#name = name;
    this.#detail = h('span', { class: 'file-detail' });
    this.#author = author;
    this.#meta = messageMeta(author, ts, false);
    this.#bar = h('progress', { class: 'file-progress', attrs: { max: '1', value: '0', 'aria-label': `Progress of ${name}` } });
    this.#status = h('span', { class: 'file-status', attrs: { role: 'status' } });
    const progressLine = h('span', { class: 'file-progress-line' }, this.#status, this.#detail);
    this.#actions = h('span', { class: 'file-actions' });
    this.#media = h('div', { class: 'file-media' });
    this.li = h('li', { class: ['msg', 'file', author.self && 'own'] },
      this.#meta,
      h('div', { class: 'file-info' },
        h('span', { class: 'file-icon', attrs: { 'aria-hidden': 'true' } }),
        h('span', { class: 'file-name', text: name }),
        h('span', { class: 'file-size', text: byteSize(size) })),
      this.#media,
      this.#bar,
      h('div', { class: 'file-footer' }, progressLine, this.#actions));
  }

  time(ts: number): void {
    const meta = messageMeta(this.#author, ts, false);
    this.#meta.replaceWith(meta);
  }

  status(text: string): void {
    this.#status.textContent = text;
  }

  /** How the file is cut, so that progress in parts can be told in bytes. */
  chunking(chunkSize: number, size: number): void {
    this.#chunkSize = chunkSize;
    this.#size = size;
  }

  /** `done` of `total` parts; with `measured`, also bytes, percentage, speed and time left. */
  progress(done: number, total: number, text: string, measured = false): void {
    this.#bar.max = total;
    this.#bar.value = done;
    this.#status.textContent = text;
    if (!measured || this.#chunkSize === 0) return;
    const bytes = bytesOfParts(done, this.#chunkSize, this.#size);
    this.#rate.sample(bytes);
    this.#detail.textContent = ` · ${progressText(bytes, this.#size, this.#rate.bytesPerSecond)}`;
  }

  cancellable(cancel: () => void): void {
    replaceChildren(this.#actions, h('button', {
      class: 'link-button', attrs: { type: 'button', 'aria-label': `Cancel ${this.#name}` }, text: 'Cancel', on: { click: cancel },
    }));
  }

  done(text: string): void {
    this.#bar.remove();
    this.#detail.textContent = '';
    this.#status.textContent = text;
    replaceChildren(this.#actions);
  }

  /** A failed file shows nothing of itself (a video that was playing while it arrived goes). */
  error(text: string): void {
    this.clearMedia();
    this.#bar.remove();
    this.#detail.textContent = '';
    this.li.classList.add('failed');
    this.#status.textContent = text;
    this.#status.classList.add('error');
    replaceChildren(this.#actions);
  }

  /** Stopped on purpose (cancelled): no error, nothing of the file shown or offered. */
  stopped(text: string): void {
    this.clearMedia();
    this.#bar.remove();
    this.#detail.textContent = '';
    this.li.classList.add('cancelled');
    this.#status.textContent = text;
    replaceChildren(this.#actions);
  }

  clearMedia(): void {
    for (const media of this.#media.querySelectorAll('video, audio')) {
      if (media instanceof HTMLMediaElement) media.pause();
    }
    replaceChildren(this.#media);
  }

  /** A video that plays while it arrives. */
  showStream(video: HTMLVideoElement, loaded: () => void): void {
    video.addEventListener('loadedmetadata', loaded, { once: true });
    replaceChildren(this.#media, video, this.#viewButton('video'));
  }

  /** Opens the full-screen viewer (viewer.ts listens for clicks on `.media-open`). */
  #viewButton(kind: 'image' | 'video'): HTMLButtonElement {
    return h('button', {
      class: 'button subtle media-open view-full', attrs: { type: 'button', 'aria-label': `View ${this.#name} full screen`, 'aria-haspopup': 'dialog' },
    }, h('span', { attrs: { 'aria-hidden': 'true' }, text: '⤢ ' }), kind === 'image' ? 'View' : 'Full screen');
  }

  /** Shows the file inline if it is media, and offers to save it. */
  show(url: string, kind: 'image' | 'video' | 'audio' | null, name: string, loaded: () => void): void {
    replaceChildren(this.#media);
    let media: HTMLElement | null = null;
    if (kind === 'image') {
      media = h('img', { class: 'preview', attrs: { src: url, alt: name } });
      media.addEventListener('load', loaded, { once: true });
    } else if (kind === 'video') {
      media = h('video', { class: 'preview', attrs: { src: url, controls: true, preload: 'metadata', 'aria-label': name } });
      media.addEventListener('loadedmetadata', loaded, { once: true });
    } else if (kind === 'audio') {
      media = h('audio', { class: 'preview-audio', attrs: { src: url, controls: true, preload: 'metadata', 'aria-label': name } });
    }
    if (media !== null && kind !== null) {
      // A format this browser cannot decode: say so rather than show a broken player.
      media.addEventListener('error', () => this.#unplayable(kind), { once: true });
      if (kind === 'image') {
        // The image itself opens the viewer (a button, so the keyboard reaches it too).
        this.#media.append(h('button', {
          class: 'media-open image-open', attrs: { type: 'button', 'aria-label': `View ${name} full screen`, 'aria-haspopup': 'dialog' },
        }, media));
      } else {
        this.#media.append(media);
        if (kind === 'video') this.#media.append(this.#viewButton('video'));
      }
    }
    this.offerSave(url, name);
  }

  #unplayable(kind: 'image' | 'video' | 'audio'): void {
    const what = kind === 'image' ? 'show this image' : kind === 'video' ? 'play this video' : 'play this audio';
    const text = this.#author.self ? `This browser cannot ${what}.` : `This browser cannot ${what}; save it to open it with another app.`;
    replaceChildren(this.#media, h('p', { class: 'file-note', text }));
  }

  /** A Save button for a received file (the sender has it already). */
  offerSave(url: string, name: string): void {
    if (!this.#author.self) {
      replaceChildren(this.#actions, h('a', { class: 'button', attrs: { href: url, download: name, rel: 'noopener' }, text: 'Save' }));
    }
  }
}
