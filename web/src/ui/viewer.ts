//! The full-screen viewer for the room's images and videos. Clicking an inline image, or a
//! video's "View full screen" button, opens it in a modal dialog: Left and Right (or the
//! buttons) move through the room's media in timeline order, Escape or Close closes it,
//! the focus stays inside while it is open and goes back where it was after. Save
//! downloads the file (from memory: nothing is fetched). An image is shown as a copy; a
//! video is moved into the viewer and back, so it keeps playing where it was (a video
//! still arriving cannot be copied).

import { h, replaceChildren } from './dom';

/** The inline media the viewer moves through, in timeline order. */
const MEDIA_SELECTOR = '.file-media img.preview, .file-media video.preview';

export class MediaViewer {
  readonly dialog: HTMLDialogElement;
  readonly #timeline: HTMLElement;
  readonly #stage: HTMLElement;
  readonly #title: HTMLElement;
  readonly #position: HTMLElement;
  readonly #save: HTMLAnchorElement;
  readonly #prev: HTMLButtonElement;
  readonly #next: HTMLButtonElement;
  readonly #close: HTMLButtonElement;
  /** The inline element shown now. */
  #current: HTMLImageElement | HTMLVideoElement | null = null;
  /** Where a video moved into the viewer came from. */
  #placeholder: HTMLElement | null = null;
  #returnFocus: HTMLElement | null = null;

  constructor(timeline: HTMLElement, host: HTMLElement) {
    this.#timeline = timeline;
    this.#title = h('h2', { class: 'viewer-title', attrs: { id: 'viewer-title', dir: 'auto' } });
    this.#position = h('span', { class: 'viewer-position' });
    this.#save = h('a', { class: 'button', attrs: { download: '', rel: 'noopener' }, text: 'Save' });
    this.#close = h('button', { class: 'button', attrs: { type: 'button' }, text: 'Close', on: { click: () => this.dialog.close() } });
    this.#prev = h('button', {
      class: 'button viewer-nav', attrs: { type: 'button', 'aria-label': 'Previous' }, on: { click: () => this.#step(-1) },
    }, h('span', { attrs: { 'aria-hidden': 'true' }, text: '‹' }));
    this.#next = h('button', {
      class: 'button viewer-nav', attrs: { type: 'button', 'aria-label': 'Next' }, on: { click: () => this.#step(1) },
    }, h('span', { attrs: { 'aria-hidden': 'true' }, text: '›' }));
    this.#stage = h('div', { class: 'viewer-stage' });
    this.dialog = h('dialog', {
      class: 'viewer', attrs: { 'aria-labelledby': 'viewer-title', 'aria-describedby': 'viewer-help' },
      on: { keydown: (event) => this.#onKeyDown(event), close: () => this.#closed() },
    },
    h('div', { class: 'viewer-bar' }, this.#title, this.#position, h('span', { class: 'viewer-actions' }, this.#save, this.#close)),
    h('div', { class: 'viewer-body' }, this.#prev, this.#stage, this.#next),
    h('p', { class: 'visually-hidden', attrs: { id: 'viewer-help' }, text: 'Left and Right arrows move between the room’s images and videos; Escape closes.' }));
    host.append(this.dialog);
    timeline.addEventListener('click', (event) => {
      const opener = event.target instanceof Element ? event.target.closest('.media-open') : null;
      if (opener === null || !this.#timeline.contains(opener)) return;
      const media = opener.closest('.msg')?.querySelector(MEDIA_SELECTOR);
      if (media instanceof HTMLImageElement || media instanceof HTMLVideoElement) {
        event.preventDefault();
        this.open(media);
      }
    });
  }

  get isOpen(): boolean {
    return this.dialog.open;
  }

  open(media: HTMLImageElement | HTMLVideoElement): void {
    if (!this.dialog.open) {
      this.#returnFocus = document.activeElement instanceof HTMLElement ? document.activeElement : null;
      this.#show(media);
      this.dialog.showModal();
      this.#close.focus();
    } else {
      this.#show(media);
    }
  }

  #all(): (HTMLImageElement | HTMLVideoElement)[] {
    const found = Array.from(this.#timeline.querySelectorAll(MEDIA_SELECTOR))
      .filter((el): el is HTMLImageElement | HTMLVideoElement => el instanceof HTMLImageElement || el instanceof HTMLVideoElement);
    // The video in the viewer is out of the timeline: it stands where its placeholder is.
    if (this.#placeholder?.isConnected === true && this.#current instanceof HTMLVideoElement) {
      const all = Array.from(this.#timeline.querySelectorAll(`${MEDIA_SELECTOR}, .viewer-placeholder`));
      return all.map((el) => el === this.#placeholder ? this.#current : el)
        .filter((el): el is HTMLImageElement | HTMLVideoElement => el instanceof HTMLImageElement || el instanceof HTMLVideoElement);
    }
    return found;
  }

  #step(by: number): void {
    const all = this.#all();
    const current = this.#current;
    if (current === null || all.length < 2) return;
    const index = all.indexOf(current);
    const next = all[(index + by + all.length) % all.length];
    if (next !== undefined && next !== current) this.#show(next);
  }

  #show(media: HTMLImageElement | HTMLVideoElement): void {
    this.#putBack();
    this.#current = media;
    const card = media.closest('.msg');
    const name = card?.querySelector('.file-name')?.textContent ?? '';
    this.#title.textContent = name;
    if (media instanceof HTMLImageElement) {
      replaceChildren(this.#stage, h('img', { class: 'viewer-media', attrs: { src: media.src, alt: media.alt } }));
    } else {
      const placeholder = h('div', { class: 'viewer-placeholder', text: 'Showing in the viewer' });
      media.replaceWith(placeholder);
      this.#placeholder = placeholder;
      media.classList.add('viewer-media');
      replaceChildren(this.#stage, media);
    }
    // The card's Save link (a received file), else the file itself (one's own, complete).
    const saved = card?.querySelector<HTMLAnchorElement>('.file-actions a[download]');
    const href = saved?.href ?? (media.dataset.streaming === 'true' ? null : media.src);
    this.#save.hidden = href === null || href === '';
    if (href !== null) {
      this.#save.href = href;
      this.#save.download = name;
    }
    this.#save.setAttribute('aria-label', `Save ${name}`);
    const all = this.#all();
    const index = all.indexOf(media);
    this.#position.textContent = all.length > 1 ? `${index + 1} of ${all.length}` : '';
    this.#prev.hidden = all.length < 2;
    this.#next.hidden = all.length < 2;
  }

  /** A video shown in the viewer goes back to its card. */
  #putBack(): void {
    const current = this.#current;
    const placeholder = this.#placeholder;
    this.#placeholder = null;
    if (current instanceof HTMLVideoElement) {
      current.classList.remove('viewer-media');
      if (placeholder?.isConnected === true) placeholder.replaceWith(current);
      else current.remove();
    }
    replaceChildren(this.#stage);
    this.#current = null;
  }

  #closed(): void {
    this.#putBack();
    const back = this.#returnFocus;
    this.#returnFocus = null;
    if (back?.isConnected === true) back.focus();
  }

  #onKeyDown(event: KeyboardEvent): void {
    if (event.key === 'Tab') {
      this.#trapTab(event);
      return;
    }
    // Arrows on a focused video's controls seek it.
    if ((event.key === 'ArrowLeft' || event.key === 'ArrowRight') && !(event.target instanceof HTMLMediaElement)) {
      event.preventDefault();
      this.#step(event.key === 'ArrowLeft' ? -1 : 1);
    }
  }

  /** Tab and Shift+Tab cycle through the viewer's controls. */
  #trapTab(event: KeyboardEvent): void {
    const focusable = Array.from(this.dialog.querySelectorAll<HTMLElement>('a[href], button, video[controls]'))
      .filter((el) => !el.hidden && el.closest('[hidden]') === null);
    const first = focusable[0];
    const last = focusable.at(-1);
    if (first === undefined || last === undefined) return;
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }
}
