//! The "new messages" line and the jump button. When messages from others arrive while
//! this person is scrolled up, or while the tab is in the background, a divider "New
//! messages" goes before the first one they have not seen, and a floating button
//! "↓ 3 new messages" scrolls to it. Once the newest of them has been in view (tab
//! visible), the button goes; the divider stays where the news began until the next
//! batch or until this person writes.

import { h, replaceChildren } from './dom';

/** Within this many pixels of the bottom, the newest item counts as seen. */
const SEEN_SLACK_PX = 4;

export class UnseenMarker {
  readonly button: HTMLButtonElement;
  readonly #scroller: HTMLElement;
  readonly #divider: HTMLLIElement;
  #unseen = 0;
  #mentions = 0;
  #last: HTMLElement | null = null;

  constructor(scroller: HTMLElement) {
    this.#scroller = scroller;
    this.#divider = h('li', { class: 'new-divider', attrs: { role: 'separator', 'aria-label': 'New messages' } },
      h('span', { text: 'New messages' }));
    this.button = h('button', {
      class: 'jump-new', attrs: { type: 'button', hidden: true },
      on: { click: () => this.jump() },
    });
    scroller.addEventListener('scroll', () => this.#check(), { passive: true });
    document.addEventListener('visibilitychange', () => this.#check());
  }

  /** Number of messages not seen yet (for tests and the button). */
  get count(): number {
    return this.#unseen;
  }

  /**
   * A message from someone else is in the timeline. `inView`: the timeline was at the
   * bottom when it came (so it scrolled into view), which counts only while the tab is visible.
   */
  arrived(li: HTMLElement, inView: boolean, mentionsMe: boolean): void {
    if (inView && document.visibilityState === 'visible') {
      if (this.#unseen > 0) this.#last = li;
      this.#check();
      return;
    }
    if (this.#unseen === 0) li.before(this.#divider);
    this.#unseen++;
    if (mentionsMe) this.#mentions++;
    this.#last = li;
    this.#update();
  }

  /** This person wrote: they have seen the room; the line goes. */
  clear(): void {
    this.#divider.remove();
    this.#seen();
  }

  /** Scrolls to the "New messages" line (or to the newest item if it went). */
  jump(): void {
    if (this.#divider.isConnected) this.#divider.scrollIntoView({ block: 'start' });
    else this.#scroller.scrollTop = this.#scroller.scrollHeight;
    this.#check();
  }

  #check(): void {
    if (this.#unseen === 0 || document.visibilityState !== 'visible') return;
    const last = this.#last;
    if (last === null || !last.isConnected) {
      this.#seen();
      return;
    }
    const bottom = this.#scroller.getBoundingClientRect().bottom;
    if (last.getBoundingClientRect().bottom <= bottom + SEEN_SLACK_PX) this.#seen();
  }

  #seen(): void {
    this.#unseen = 0;
    this.#mentions = 0;
    this.#last = null;
    this.#update();
  }

  #update(): void {
    const n = this.#unseen;
    this.button.hidden = n === 0;
    this.button.classList.toggle('mentioned', this.#mentions > 0);
    if (n === 0) {
      replaceChildren(this.button);
      return;
    }
    replaceChildren(this.button, h('span', { attrs: { 'aria-hidden': 'true' }, text: '↓ ' }),
      `${n} new message${n === 1 ? '' : 's'}${this.#mentions > 0 ? ' · mentions you' : ''}`);
  }
}
