//! @mentions in the composer: typing `@` offers the names of the people in the room (the
//! letters typed after it narrow the list). Up and Down move, Enter or Tab picks, Escape
//! closes; a click picks too. The list is a listbox tied to the composer with
//! aria-activedescendant, so a screen reader follows it while the focus stays in the text.

import { h, replaceChildren } from './dom';

/** At most this many names are offered at once. */
const MAX_OFFERED = 8;
/** How far back from the caret an `@` may be (names are at most 64 characters). */
const MAX_QUERY_CHARS = 64;

export interface MentionCandidate {
  readonly name: string;
  readonly self: boolean;
}

/** The `@query` just before the caret in `text`, or null: `@` at the start or after a non-letter, no line break. */
export function mentionQuery(text: string, caret: number): { readonly start: number; readonly query: string } | null {
  const from = Math.max(0, caret - MAX_QUERY_CHARS - 1);
  const at = text.lastIndexOf('@', caret - 1);
  if (at < from) return null;
  const before = text[at - 1];
  if (before !== undefined && /[\p{L}\p{N}]/u.test(before)) return null;
  const query = text.slice(at + 1, caret);
  if (query.includes('\n') || query.includes('@')) return null;
  return { start: at, query };
}

/** The names offered for `query`: those starting with it (any case), then those containing it. */
export function offeredNames(query: string, candidates: readonly MentionCandidate[]): string[] {
  const q = query.toLowerCase();
  const names = Array.from(new Set(candidates.filter((c) => !c.self).map((c) => c.name)));
  const starting = names.filter((name) => name.toLowerCase().startsWith(q));
  const containing = q.length === 0 ? [] : names.filter((name) => !name.toLowerCase().startsWith(q) && name.toLowerCase().includes(q));
  return [...starting, ...containing].slice(0, MAX_OFFERED);
}

export class MentionPicker {
  readonly list: HTMLUListElement;
  readonly #input: HTMLTextAreaElement;
  readonly #candidates: () => readonly MentionCandidate[];
  #offered: string[] = [];
  #active = 0;
  #start = -1;

  /** `form` holds the composer; the list goes in it and its keys are taken before the composer's. */
  constructor(input: HTMLTextAreaElement, form: HTMLElement, candidates: () => readonly MentionCandidate[]) {
    this.#input = input;
    this.#candidates = candidates;
    this.list = h('ul', { class: 'mention-list', attrs: { id: 'mention-list', role: 'listbox', 'aria-label': 'People to mention', hidden: true } });
    form.append(this.list);
    input.setAttribute('aria-autocomplete', 'list');
    input.setAttribute('aria-controls', 'mention-list');
    input.addEventListener('input', () => this.#refresh());
    input.addEventListener('click', () => this.#refresh());
    input.addEventListener('blur', () => this.close());
    // Capture: before the composer's own Enter (send) and the page's Escape.
    form.addEventListener('keydown', (event) => this.#onKeyDown(event), { capture: true });
    form.addEventListener('keyup', (event) => {
      if (event.key === 'ArrowLeft' || event.key === 'ArrowRight' || event.key === 'Home' || event.key === 'End') this.#refresh();
    });
  }

  get open(): boolean {
    return !this.list.hidden;
  }

  close(): void {
    if (!this.open) return;
    this.list.hidden = true;
    this.#offered = [];
    this.#input.removeAttribute('aria-activedescendant');
    this.#input.removeAttribute('aria-expanded');
  }

  #refresh(): void {
    const caret = this.#input.selectionStart;
    const found = caret === this.#input.selectionEnd ? mentionQuery(this.#input.value, caret) : null;
    const offered = found === null ? [] : offeredNames(found.query, this.#candidates());
    if (found === null || offered.length === 0) {
      this.close();
      return;
    }
    this.#start = found.start;
    this.#offered = offered;
    this.#active = 0;
    this.#render();
  }

  #render(): void {
    replaceChildren(this.list, ...this.#offered.map((name, index) => h('li', {
      class: ['mention-option', index === this.#active && 'active'],
      attrs: { id: `mention-option-${index}`, role: 'option', 'aria-selected': String(index === this.#active) },
      on: {
        // mousedown, not click: the composer keeps the focus.
        mousedown: (event) => {
          event.preventDefault();
          this.#pick(name);
        },
      },
    }, h('span', { attrs: { 'aria-hidden': 'true' }, text: '@' }), h('bdi', { attrs: { dir: 'auto' }, text: name }))));
    this.list.hidden = false;
    this.#input.setAttribute('aria-expanded', 'true');
    this.#input.setAttribute('aria-activedescendant', `mention-option-${this.#active}`);
  }

  #onKeyDown(event: KeyboardEvent): void {
    if (!this.open || event.target !== this.#input || event.isComposing) return;
    const n = this.#offered.length;
    let handled = true;
    switch (event.key) {
      case 'ArrowDown':
        this.#active = (this.#active + 1) % n;
        this.#render();
        break;
      case 'ArrowUp':
        this.#active = (this.#active - 1 + n) % n;
        this.#render();
        break;
      case 'Enter':
      case 'Tab': {
        if (event.shiftKey) {
          handled = false;
          break;
        }
        const name = this.#offered[this.#active];
        if (name !== undefined) this.#pick(name);
        break;
      }
      case 'Escape':
        this.close();
        break;
      default:
        handled = false;
    }
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }

  /** Replaces the `@query` before the caret with `@name ` and puts the caret after it. */
  #pick(name: string): void {
    const input = this.#input;
    const caret = input.selectionStart;
    const start = this.#start;
    if (start < 0 || start >= caret) {
      this.close();
      return;
    }
    const insert = `@${name} `;
    input.setRangeText(insert, start, caret, 'end');
    this.close();
    input.focus();
  }
}
