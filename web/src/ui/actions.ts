//! What one can do with a text in the timeline: reply (the quote above the composer, with
//! Cancel), react (a few common emoji; a reaction chip toggles one's own), and, for one's
//! own texts, edit inline (Enter saves, Escape cancels; Up arrow in an empty composer edits
//! the last one) and delete (after a confirmation). It also shows what those did: the
//! quoted text above a reply (a click scrolls to it), "edited", "message deleted" and the
//! reaction chips. The RoomSession holds the state (`conversation.ts`); this only draws it
//! and calls the session. Everything a member sent goes in as text.

import type { ChatItem, RoomSession, TextItem } from '../room';
import { h, replaceChildren } from './dom';
import './actions.css';

/** The emoji the picker offers. */
export const QUICK_EMOJI: readonly (readonly [string, string])[] = [
  ['👍', 'thumbs up'], ['❤️', 'heart'], ['😂', 'laughing'], ['😮', 'surprised'], ['😢', 'sad'], ['🎉', 'party'],
];

export interface ActionHooks {
  /** The timeline element of an item, if still shown. */
  element(itemId: string): HTMLElement | undefined;
  /** Draws an item again as the session has it now. */
  refresh(itemId: string): void;
  /** Where dialogs go. */
  readonly dialogHost: HTMLElement;
  /** The composer's text field. */
  readonly input: HTMLTextAreaElement;
}

export class MessageActions {
  /** The "Replying to …" bar, above the composer. */
  readonly replyBar: HTMLElement;
  readonly #replyText: HTMLElement;
  readonly #hooks: ActionHooks;
  #session: RoomSession | null = null;
  #replyTo: string | null = null;

  constructor(hooks: ActionHooks) {
    this.#hooks = hooks;
    this.#replyText = h('span', { class: 'reply-bar-text' });
    this.replyBar = h('div', { class: 'reply-bar', attrs: { hidden: true, 'aria-live': 'polite' } },
      this.#replyText,
      h('button', { class: 'button subtle', attrs: { type: 'button', 'aria-label': 'Cancel reply' }, text: 'Cancel', on: { click: () => this.cancelReply() } }));
  }

  attach(session: RoomSession): void {
    this.#session = session;
  }

  /** Adds the reply quote, "edited", "message deleted", reactions and the action buttons to a rendered text. */
  decorate(li: HTMLLIElement, item: ChatItem): void {
    const session = this.#session;
    if (item.kind !== 'text' || item.ref === undefined || session === null) return;
    const text = li.querySelector<HTMLElement>('.text');
    if (item.reply !== undefined) {
      const reply = item.reply;
      const quote = h('button', {
        class: 'reply-quote', attrs: { type: 'button', 'aria-label': `In reply to ${reply.author ?? 'an earlier message'}: ${reply.deleted ? 'message deleted' : reply.text}. Show it.`, disabled: reply.itemId === null },
        on: { click: () => this.#showItem(reply.itemId) },
      },
      h('span', { class: 'reply-author' }, h('bdi', { attrs: { dir: 'auto' }, text: reply.author ?? 'An earlier message' })),
      h('span', { class: ['reply-text', reply.deleted && 'deleted'], attrs: { dir: 'auto' }, text: reply.deleted ? 'message deleted' : reply.text }));
      if (text !== null) text.before(quote);
      else li.append(quote);
    }
    if (item.deleted === true) {
      li.classList.add('deleted');
      if (text !== null) replaceChildren(text, h('span', { class: 'deleted-label', text: 'message deleted' }));
      return;
    }
    if (item.edited === true) li.querySelector('.meta')?.append(h('span', { class: 'edited', text: 'edited' }));
    const reactions = item.reactions ?? [];
    if (reactions.length > 0) {
      li.append(h('div', { class: 'reactions', attrs: { role: 'group', 'aria-label': 'Reactions' } },
        ...reactions.map((r) => h('button', {
          class: ['reaction', r.mine && 'mine'],
          attrs: {
            type: 'button', 'aria-pressed': String(r.mine), title: r.names.join(', '),
            'aria-label': `${r.emoji} ${r.count}: ${r.names.join(', ')}${r.mine ? ' (yours; select to take it back)' : ''}`,
          },
          on: { click: () => this.#session?.react(item.id, r.emoji) },
        }, h('span', { class: 'reaction-emoji', text: r.emoji }), h('span', { class: 'reaction-count', text: String(r.count) })))));
    }
    if (!session.canAnswer(item.id)) return;
    const reactButton = h('button', {
      class: 'button subtle', attrs: { type: 'button', 'aria-haspopup': 'true', 'aria-expanded': 'false', 'aria-label': 'React' }, text: 'React',
    });
    const picker = h('div', { class: 'reaction-picker', attrs: { role: 'group', 'aria-label': 'Pick a reaction', hidden: true } },
      ...QUICK_EMOJI.map(([emoji, label]) => h('button', {
        class: 'button subtle', attrs: { type: 'button', 'aria-label': `React with ${label}`, title: label },
        text: emoji,
        on: { click: () => { this.#session?.react(item.id, emoji); } },
      })));
    const closePicker = (focus: boolean) => {
      picker.hidden = true;
      reactButton.setAttribute('aria-expanded', 'false');
      if (focus) reactButton.focus();
    };
    reactButton.addEventListener('click', () => {
      const open = picker.hidden;
      picker.hidden = !open;
      reactButton.setAttribute('aria-expanded', String(open));
      if (open) picker.querySelector('button')?.focus();
    });
    picker.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        closePicker(true);
      }
    });
    const buttons: HTMLElement[] = [
      h('button', {
        class: 'button subtle', attrs: { type: 'button', 'aria-label': `Reply to ${item.author.self ? 'your message' : item.author.name}` }, text: 'Reply',
        on: { click: () => this.startReply(item) },
      }),
      reactButton,
    ];
    if (item.author.self && session.canChange(item.id)) {
      buttons.push(
        h('button', { class: 'button subtle', attrs: { type: 'button', 'aria-label': 'Edit your message' }, text: 'Edit', on: { click: () => this.startEdit(item.id) } }),
        h('button', { class: 'button subtle', attrs: { type: 'button', 'aria-label': 'Delete your message' }, text: 'Delete', on: { click: () => this.#confirmDelete(item.id) } }),
      );
    }
    li.append(h('div', { class: 'msg-actions', attrs: { role: 'group', 'aria-label': 'Message actions' } }, ...buttons), picker);
  }

  /** Shows "Replying to …" above the composer; the next text sent answers `item`. */
  startReply(item: TextItem): void {
    this.#replyTo = item.id;
    replaceChildren(this.#replyText, 'Replying to ', h('bdi', { attrs: { dir: 'auto' }, text: item.author.self ? 'yourself' : item.author.name }), ': ',
      h('span', { class: 'reply-bar-quote', attrs: { dir: 'auto' }, text: item.text }));
    this.replyBar.hidden = false;
    this.#hooks.input.focus();
  }

  cancelReply(): void {
    this.#replyTo = null;
    this.replyBar.hidden = true;
    replaceChildren(this.#replyText);
    this.#hooks.input.focus();
  }

  /** The text the next message answers, if any; the bar goes away. */
  takeReply(): string | null {
    const replyTo = this.#replyTo;
    if (replyTo !== null) {
      this.#replyTo = null;
      this.replyBar.hidden = true;
      replaceChildren(this.#replyText);
    }
    return replyTo;
  }

  /** Keys in the composer: Escape cancels a reply, Up in an empty composer edits the last own text. True if handled. */
  onComposerKey(event: KeyboardEvent): boolean {
    if (event.key === 'Escape' && this.#replyTo !== null) {
      event.preventDefault();
      this.cancelReply();
      return true;
    }
    if (event.key === 'ArrowUp' && this.#hooks.input.value === '' && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey) {
      const last = this.#session?.lastOwnChangeable() ?? null;
      if (last === null) return false;
      event.preventDefault();
      this.startEdit(last);
      return true;
    }
    return false;
  }

  /** Replaces the text of own text `itemId` with an editor: Enter (or Save) saves, Escape (or Cancel) cancels. */
  startEdit(itemId: string): void {
    const session = this.#session;
    const item = session?.textItem(itemId) ?? null;
    const li = this.#hooks.element(itemId);
    const text = li?.querySelector<HTMLElement>('.text');
    if (session === null || item === null || li === undefined || text === null || text === undefined || !session.canChange(itemId)) return;
    const field = h('textarea', { class: 'edit-input', attrs: { 'aria-label': 'Text of your message', dir: 'auto', rows: String(Math.min(8, item.text.split('\n').length)) } });
    field.value = item.text;
    const done = (save: boolean) => {
      if (save && !session.editText(itemId, field.value)) return;
      this.#hooks.refresh(itemId);
      if (!save) this.#hooks.element(itemId)?.querySelector<HTMLElement>('.msg-actions button')?.focus();
      this.#hooks.input.focus();
    };
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        done(true);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        event.stopPropagation();
        done(false);
      }
    });
    const form = h('form', { class: 'edit-form', on: { submit: (event) => { event.preventDefault(); done(true); } } },
      field,
      h('div', { class: 'edit-buttons' },
        h('button', { class: 'button primary', attrs: { type: 'submit' }, text: 'Save' }),
        h('button', { class: 'button subtle', attrs: { type: 'button' }, text: 'Cancel', on: { click: () => done(false) } }),
        h('span', { class: 'hint', text: 'Enter saves, Escape cancels' })));
    text.replaceWith(form);
    li.querySelector('.msg-actions')?.remove();
    field.focus();
    field.setSelectionRange(field.value.length, field.value.length);
  }

  #confirmDelete(itemId: string): void {
    const dialog = h('dialog', { class: 'dialog', attrs: { 'aria-labelledby': 'delete-title' } },
      h('h2', { attrs: { id: 'delete-title' }, text: 'Delete this message?' }),
      h('p', { text: 'It is removed for everyone in the room and shows as “message deleted”. This cannot be undone.' }),
      h('form', { class: 'dialog-buttons', attrs: { method: 'dialog' } },
        h('button', { class: 'button danger', attrs: { type: 'submit', value: 'delete' }, text: 'Delete' }),
        h('button', { class: 'button', attrs: { type: 'submit', value: 'cancel', autofocus: true }, text: 'Cancel' })));
    dialog.addEventListener('close', () => {
      if (dialog.returnValue === 'delete') this.#session?.deleteText(itemId);
      dialog.remove();
      this.#hooks.input.focus();
    });
    this.#hooks.dialogHost.append(dialog);
    dialog.showModal();
  }

  #showItem(itemId: string | null): void {
    const li = itemId === null ? undefined : this.#hooks.element(itemId);
    if (li === undefined) return;
    li.scrollIntoView({ block: 'center' });
    li.classList.remove('flash');
    // Restart the highlight, and let keyboard users land on it.
    void li.offsetWidth;
    li.classList.add('flash');
    li.tabIndex = -1;
    li.focus();
  }
}
