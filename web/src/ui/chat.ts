//! The chat screen: header (encryption status, connection status, invite, leave), the
//! online list with fingerprints, the timeline of messages and system alerts, the typing
//! line and the composer. It renders what the RoomSession reports and calls its methods;
//! it never touches the socket or a key. Every piece of text from others goes in as text.

import type { ConnectionState } from '../connection';
import { MAX_TEXT_CHARS } from '../content';
import { clock, connectionStatusText, nameSegments, shortFingerprint, textTooLongText } from '../format';
import type { LobbyView } from '../lobby';
import type { Author, ChatItem, MemberView, RoomListener, RoomSession } from '../room';
import { MessageActions } from './actions';
import { Attention } from './attention';
import { h, replaceChildren } from './dom';
import { observeGrouping } from './grouping';
import { MentionPicker } from './mentions';
import { richText } from './rich';
import { UnseenMarker } from './unseen';
import { MediaViewer } from './viewer';
import { confirmLeave } from './leave';
import { notificationSettings } from './settings';
import { shareButton } from './share';
import { authorMarks, memberMarks, verifyControl } from './trust';

/** The timeline keeps at most this many items in the page; older ones are removed. */
const MAX_TIMELINE_ITEMS = 1000;
/** Within this many pixels of the bottom, new items keep the timeline scrolled down. */
const STICKY_SCROLL_PX = 80;

export interface ChatViewHooks {
  /** After this person left the room (Leave button). */
  left(): void;
}

export class ChatView implements RoomListener {
  readonly root: HTMLElement;
  readonly #hooks: ChatViewHooks;
  readonly #attention = new Attention();
  readonly #items = new Map<string, HTMLLIElement>();
  /**
   * Own texts not yet acknowledged, in the order typed. They stay at the bottom: whatever
   * arrives meanwhile goes above them, so when the server takes one it is already in
   * its place in the room's order.
   */
  readonly #pending = new Set<string>();
  readonly #timeline: HTMLOListElement;
  readonly #scroller: HTMLElement;
  readonly #status: HTMLElement;
  readonly #memberList: HTMLUListElement;
  readonly #memberHeading: HTMLElement;
  readonly #membersToggle: HTMLButtonElement;
  readonly #aside: HTMLElement;
  readonly #typingLine: HTMLElement;
  readonly #input: HTMLTextAreaElement;
  /** Why the composer's text was not sent (too long), shown under it; empty when nothing is wrong. */
  readonly #composerError: HTMLElement;
  readonly #copyButton: HTMLButtonElement;
  readonly #notifyButton: HTMLButtonElement;
  readonly #fingerprintDialog: HTMLDialogElement;
  readonly #e2eDialog: HTMLDialogElement;
  readonly #extraDialogs: HTMLElement;
  readonly #conversation: HTMLElement;
  readonly #fileInput: HTMLInputElement;
  readonly #actions: MessageActions;
  /** A v2 room's lobby: "Waiting to be let in", or the people knocking with a Let in button each. */
  readonly #lobbyPanel: HTMLElement;
  /** The key epoch of a v2 room, under the online list. */
  readonly #keyEpoch: HTMLElement;
  /** Knockers this person let in, until they are in (their button says so). */
  readonly #lettingIn = new Set<string>();
  /** In a v2 room: members present who are not let in yet (marked in the online list). */
  #outside = new Set<string>();
  #lastMembers: readonly MemberView[] = [];
  #filesHandler: ((files: File[]) => void) | null = null;
  #evictedHandler: ((id: string) => void) | null = null;
  #session: RoomSession | null = null;
  /** Names of the people here, for @mentions in messages. */
  #names: string[] = [];
  readonly #unseen: UnseenMarker;
  #copyTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(hooks: ChatViewHooks) {
    this.#hooks = hooks;
    this.#status = h('span', { class: 'conn-status', attrs: { role: 'status', 'aria-live': 'polite', 'data-tone': 'busy' }, text: 'Connecting…' });
    this.#copyButton = h('button', { class: 'button', attrs: { type: 'button' }, on: { click: () => void this.#copyInvite() } },
      ...labels('Copy invite link', 'Invite'));
    this.#notifyButton = h('button', {
      class: 'button subtle', attrs: { type: 'button', hidden: !Attention.canAsk() },
      on: { click: () => void this.#askNotifications() },
    }, ...labels('Enable notifications', 'Notify me'));
    this.#membersToggle = h('button', {
      class: 'button subtle members-toggle', attrs: { type: 'button', 'aria-controls': 'members', 'aria-expanded': 'false' }, text: 'Online',
      on: { click: () => this.#toggleMembers() },
    });
    // The drawer (narrow screens) closes on Escape and on a tap outside it.
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.#drawerOpen() && document.querySelector('dialog[open]') === null) {
        this.#closeMembers();
        this.#membersToggle.focus();
      }
    });
    document.addEventListener('pointerdown', (event) => {
      const target = event.target instanceof Node ? event.target : null;
      if (this.#drawerOpen() && !this.#aside.contains(target) && !this.#membersToggle.contains(target)) this.#closeMembers();
    });
    const leaveButton = h('button', { class: 'button danger', attrs: { type: 'button' }, text: 'Leave', on: { click: () => confirmLeave(this.#extraDialogs, () => void this.#leave()) } });
    const e2eButton = h('button', {
      class: 'e2e', attrs: { type: 'button', 'aria-haspopup': 'dialog' },
      on: { click: () => this.#e2eDialog.showModal() },
    }, h('span', { class: 'lock', attrs: { 'aria-hidden': 'true' } }), ...labels('Messages are end-to-end encrypted', 'End-to-end encrypted'));

    this.#memberHeading = h('h2', { text: 'Online' });
    this.#keyEpoch = h('p', { class: 'hint key-epoch', attrs: { hidden: true } });
    this.#lobbyPanel = h('div', { class: 'lobby', attrs: { hidden: true, 'aria-live': 'polite' } });
    this.#memberList = h('ul', { class: 'member-list' });
    this.#aside = h('aside', { class: 'members', attrs: { id: 'members', 'aria-label': 'People in this room' } },
      this.#memberHeading, this.#memberList,
      h('p', { class: 'hint', text: 'Select someone to compare their fingerprint.' }),
      this.#keyEpoch,
      notificationSettings());

    this.#timeline = h('ol', { class: 'timeline', attrs: { 'aria-label': 'Messages', role: 'log', 'aria-live': 'polite' } });
    this.#scroller = h('div', { class: 'scroller', attrs: { tabindex: '0', 'aria-label': 'Conversation' } }, this.#timeline);
    observeGrouping(this.#timeline);
    this.#unseen = new UnseenMarker(this.#scroller);
    this.#typingLine = h('div', { class: 'typing', attrs: { 'aria-live': 'polite' } });
    this.#input = h('textarea', {
      class: 'composer-input',
      // No `maxlength`: the browser would cut a longer paste silently. #send refuses it instead.
      attrs: { id: 'composer-input', rows: '1', dir: 'auto', placeholder: 'Write a message…', autocomplete: 'off', 'aria-describedby': 'composer-hint composer-error' },
      on: {
        keydown: (event) => this.#onKeyDown(event),
        input: () => {
          if (this.#input.value.trim().length > 0) this.#session?.typing();
          if (this.#composerError.textContent !== '' && textTooLongText(this.#input.value.length, MAX_TEXT_CHARS) === null) this.#showComposerError(null);
        },
      },
    });
    this.#composerError = h('p', { class: 'composer-error', attrs: { id: 'composer-error', role: 'alert', hidden: true } });
    this.#input.addEventListener('paste', (event) => {
      const files = Array.from(event.clipboardData?.files ?? []);
      if (files.length > 0 && this.#filesHandler !== null) {
        event.preventDefault();
        this.#filesHandler(files);
      }
    });
    this.#fileInput = h('input', {
      class: 'visually-hidden', attrs: { type: 'file', multiple: true, tabindex: '-1', 'aria-hidden': 'true' },
      on: { change: () => this.#filesChosen() },
    });
    const attachButton = h('button', {
      class: 'button attach', attrs: { type: 'button', 'aria-label': 'Attach a file', title: 'Attach a file (or drop it here, or paste it)' },
      on: { click: () => this.#fileInput.click() },
    }, h('span', { class: 'clip', attrs: { 'aria-hidden': 'true' } }));
    const composer = h('form', { class: 'composer', on: { submit: (event) => { event.preventDefault(); this.#send(); } } },
      this.#fileInput,
      attachButton,
      h('label', { class: 'visually-hidden', attrs: { for: 'composer-input' }, text: 'Message' }),
      this.#input,
      h('button', { class: 'button primary', attrs: { type: 'submit' }, text: 'Send' }),
      h('span', { class: 'visually-hidden', attrs: { id: 'composer-hint' }, text: 'Enter sends, Shift+Enter starts a new line.' }),
      this.#composerError);
    new MentionPicker(this.#input, composer, () => this.#session?.members ?? []);

    this.#fingerprintDialog = h('dialog', { class: 'dialog', attrs: { 'aria-labelledby': 'fingerprint-title' } });
    this.#e2eDialog = e2eDialog();
    this.#extraDialogs = h('div');
    this.#actions = new MessageActions({
      element: (id) => this.#items.get(id),
      refresh: (id) => { const item = this.#session?.textItem(id); if (item) this.updated(item); },
      dialogHost: this.#extraDialogs,
      input: this.#input,
    });

    this.root = h('div', { class: 'chat' },
      h('header', { class: 'topbar' },
        h('div', { class: 'brand' }, h('span', { class: 'logo', attrs: { 'aria-hidden': 'true' } }), h('h1', { text: 'StreamChat' })),
        e2eButton,
        this.#status,
        h('div', { class: 'actions' }, this.#membersToggle, this.#copyButton, shareButton(this.#extraDialogs), this.#notifyButton, leaveButton)),
      h('div', { class: 'layout' },
        this.#aside,
        this.#conversation = h('main', { class: 'conversation' }, this.#lobbyPanel, this.#scroller, this.#unseen.button, this.#typingLine, this.#actions.replyBar, composer)),
      this.#fingerprintDialog, this.#e2eDialog, this.#extraDialogs);
    new MediaViewer(this.#timeline, this.#extraDialogs);
  }

  attach(session: RoomSession): void {
    this.#session = session;
    this.#actions.attach(session);
  }

  /** Files chosen with the attach button, dropped on the conversation or pasted go here. */
  onFiles(handler: (files: File[]) => void): void {
    this.#filesHandler = handler;
    const hasFiles = (event: DragEvent): boolean => event.dataTransfer?.types.includes('Files') ?? false;
    this.#conversation.addEventListener('dragover', (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      this.#conversation.classList.add('dropping');
    });
    this.#conversation.addEventListener('dragleave', (event) => {
      if (event.target === this.#conversation || !this.#conversation.contains(event.relatedTarget as Node | null)) {
        this.#conversation.classList.remove('dropping');
      }
    });
    this.#conversation.addEventListener('drop', (event) => {
      this.#conversation.classList.remove('dropping');
      const files = Array.from(event.dataTransfer?.files ?? []);
      if (files.length === 0) return;
      event.preventDefault();
      handler(files);
    });
  }

  /** Told when an item leaves the timeline (to release what it holds, like Blob URLs). */
  onEvicted(handler: (id: string) => void): void {
    this.#evictedHandler = handler;
  }

  focusComposer(): void {
    this.#input.focus();
  }

  /** Where other modules (file sharing) put their own dialogs. */
  get dialogHost(): HTMLElement {
    return this.#extraDialogs;
  }

  get composerInput(): HTMLTextAreaElement {
    return this.#input;
  }

  // ---- RoomListener ------------------------------------------------------------------------

  connection(state: ConnectionState): void {
    const { label, tone } = connectionStatusText(state);
    this.#status.textContent = label;
    this.#status.dataset.tone = tone;
    this.root.dataset.connection = state.kind;
  }

  members(members: readonly MemberView[]): void {
    this.#lastMembers = members;
    this.#names = members.map((member) => member.name);
    const others = members.filter((member) => !member.self).length;
    this.#memberHeading.textContent = `Online (${members.length})`;
    this.#membersToggle.textContent = `Online (${members.length})`;
    this.#copyButton.classList.toggle('primary', others === 0);
    replaceChildren(this.#memberList, ...members.map((member) =>
      h('li', {},
        h('button', {
          class: 'member', attrs: { type: 'button', 'aria-haspopup': 'dialog', 'data-member': member.member },
          on: { click: () => this.#showFingerprint(member) },
        },
        h('span', { class: 'member-name' }, h('bdi', { attrs: { dir: 'auto' }, text: member.name }), member.self ? h('span', { class: 'you', text: ' (you)' }) : null,
          member.away ? h('span', { class: 'away', text: ' reconnecting…' }) : null,
          this.#outside.has(member.member) ? h('span', { class: 'away outside', text: ' not let in yet' }) : null),
        memberMarks(member),
        h('span', { class: 'fingerprint', text: member.fingerprint })))));
  }

  /** A v2 room's lobby (docs/crypto.md §17.3). */
  lobby(view: LobbyView): void {
    this.#keyEpoch.hidden = view.epoch === null;
    this.#keyEpoch.textContent = view.epoch === null ? '' : `Key epoch ${view.epoch}: the keys change whenever someone joins or leaves.`;
    const knocking = new Set(view.knocks.map((k) => k.member));
    for (const member of this.#lettingIn) if (!knocking.has(member)) this.#lettingIn.delete(member);
    const waiting = view.status === 'waiting'
      ? h('p', { class: 'lobby-wait', text: view.knockRoom ? 'Waiting to be let in… someone here must let you in.' : 'Waiting to be let in…' })
      : null;
    const knocks = view.knocks.length === 0 ? null : h('ul', { class: 'knocks', attrs: { 'aria-label': 'Asking to be let in' } },
      ...view.knocks.map((knock) => {
        const busy = this.#lettingIn.has(knock.member);
        return h('li', { class: 'knock', attrs: { 'data-member': knock.member } },
          h('span', { class: 'knock-text' }, h('bdi', { attrs: { dir: 'auto' }, text: knock.name }), ' asks to be let in'),
          h('span', { class: 'fingerprint', attrs: { title: 'Their fingerprint: compare it with the one they see for themselves' }, text: knock.fingerprint }),
          h('button', {
            class: 'button primary', attrs: { type: 'button', 'aria-label': `Let ${knock.name} in`, disabled: busy },
            text: busy ? 'Letting in…' : 'Let in',
            on: { click: () => { this.#lettingIn.add(knock.member); this.#session?.letIn(knock.member); this.lobby(view); } },
          }));
      }));
    replaceChildren(this.#lobbyPanel, waiting, knocks);
    this.#lobbyPanel.hidden = waiting === null && knocks === null;
    this.root.dataset.lobby = view.status;
    const outside = new Set(view.outside);
    if (outside.size !== this.#outside.size || view.outside.some((member) => !this.#outside.has(member))) {
      this.#outside = outside;
      this.members(this.#lastMembers);
    }
    if (this.#e2eDialog.querySelector('.e2e-v2') === null) {
      this.#e2eDialog.querySelector('h3')?.before(h('p', { class: 'e2e-v2', text: view.knockRoom
        ? 'In this room the keys change whenever someone joins or leaves: newcomers cannot read what was said before they were let in, and whoever left cannot read what follows. The link alone is not enough: someone here must let each newcomer in. Compare their fingerprint before you do.'
        : 'In this room the keys change whenever someone joins or leaves: newcomers cannot read what was said before they came, and whoever left cannot read what follows. Anyone with the link is let in.' }));
    }
  }

  added(item: ChatItem): void {
    const stick = this.#nearBottom() || (item.kind === 'text' && item.author.self);
    const li = this.#render(item);
    this.#items.set(item.id, li);
    if (item.kind === 'text' && item.author.self && isPending(item)) {
      this.#pending.add(item.id);
      this.#timeline.append(li);
    } else {
      this.#insert(li);
    }
    this.#evictOld();
    if (stick) this.#scrollToBottom();
    if (item.kind === 'text' && !item.author.self) {
      const mentioned = li.classList.contains('mention-me');
      this.#unseen.arrived(li, stick, mentioned);
      if (mentioned) this.#attention.mention(item.author.name, item.text);
      else this.#attention.message(item.author.name, item.text);
    }
  }

  updated(item: ChatItem): void {
    const existing = this.#items.get(item.id);
    if (existing === undefined) return;
    const li = this.#render(item);
    existing.replaceWith(li);
    this.#items.set(item.id, li);
    if (!isPending(item)) this.#pending.delete(item.id);
  }

  /** Appends `li`, above own texts still waiting for the server. */
  #insert(li: HTMLLIElement): void {
    for (const id of this.#pending) {
      const waiting = this.#items.get(id);
      if (waiting?.isConnected === true) {
        waiting.before(li);
        return;
      }
    }
    this.#timeline.append(li);
  }

  typing(text: string, names: readonly string[] = []): void {
    replaceChildren(this.#typingLine, ...withIsolatedNames(text, names));
  }

  /** Whether the timeline is scrolled (nearly) to the bottom, e.g. before a card grows a preview. */
  isNearBottom(): boolean {
    return this.#nearBottom();
  }

  scrollToBottom(): void {
    this.#scrollToBottom();
  }

  /** Adds an element made elsewhere (a file card) to the timeline. */
  addElement(id: string, li: HTMLLIElement, fromOthers: { name: string; text: string } | null): void {
    const stick = this.#nearBottom() || fromOthers === null;
    this.#items.set(id, li);
    this.#insert(li);
    this.#evictOld();
    if (stick) this.#scrollToBottom();
    if (fromOthers !== null) this.#unseen.arrived(li, stick, false);
    if (fromOthers !== null) this.#attention.message(fromOthers.name, fromOthers.text);
  }

  // ---- Rendering ---------------------------------------------------------------------------

  #render(item: ChatItem): HTMLLIElement {
    if (item.kind === 'alert') {
      return h('li', { class: ['alert', item.tone === 'warning' && 'warning'], attrs: { 'data-id': item.id } },
        h('span', { class: 'alert-text' }, ...withIsolatedNames(item.text, item.names)),
        item.count > 1 ? h('span', { class: 'count', text: ` ×${item.count}` }) : null);
    }
    const status = item.status;
    const text = h('div', { class: 'text', attrs: { dir: 'auto' } });
    // Light formatting and @mentions (markup.ts), built as elements: never markup from text.
    const rich = richText(item.text, { names: this.#names, self: this.#session?.name ?? '' });
    text.append(...rich.nodes);
    // Pending texts go out by themselves; a failed one could never go as it is, so there is
    // no retry: it says why, and offers what can work (edit it in the composer, or remove it).
    const statusLine = status.kind === 'sent' ? null : h('div', { class: ['status', status.kind] },
      status.kind === 'queued' && status.lobby === true ? 'Waiting to be let in; it goes out by itself then.'
        : status.kind === 'queued' ? 'Sending… Waiting for the connection; it goes out by itself when it is back.'
        : status.kind === 'sending' ? 'Sending…'
        : `Not sent: ${status.reason}`,
      status.kind === 'failed' ? h('span', { class: 'status-actions' },
        h('button', { class: 'button subtle', attrs: { type: 'button' }, text: 'Edit', on: { click: () => this.#editFailed(item.id, item.text) } }),
        h('button', { class: 'button subtle', attrs: { type: 'button' }, text: 'Remove', on: { click: () => this.#removeItem(item.id) } })) : null);
    const li = h('li', { class: ['msg', item.author.self && 'own', status.kind !== 'sent' && 'pending', rich.mentionsMe && !item.author.self && 'mention-me'], attrs: { 'data-id': item.id } },
      messageMeta(item.author, item.ts, item.direct),
      text,
      statusLine);
    this.#actions.decorate(li, item);
    return li;
  }

  #showFingerprint(member: MemberView): void {
    const dialog = this.#fingerprintDialog;
    replaceChildren(dialog,
      h('h2', { attrs: { id: 'fingerprint-title' }, text: member.self ? 'Your fingerprint' : `${member.name}’s fingerprint` }),
      h('p', { class: 'fingerprint-large', text: member.fingerprint }),
      h('p', {
        text: member.self
          ? 'Others see this next to your name. If they read it back to you and it matches, they are really talking to you.'
          : `Ask ${member.name} to read out the fingerprint they see for themselves, in person or over a channel you trust. If it matches, every message marked with it really comes from them; if not, someone may be impersonating them.`,
      }),
      h('p', { class: 'hint', text: 'A fingerprint belongs to one browser tab and changes every time someone opens the room anew.' }),
      member.self ? null : verifyControl(member),
      h('form', { attrs: { method: 'dialog' } }, h('button', { class: 'button primary', attrs: { type: 'submit', autofocus: true }, text: 'Close' })));
    dialog.showModal();
  }

  // ---- Actions -----------------------------------------------------------------------------

  #onKeyDown(event: KeyboardEvent): void {
    if (this.#actions.onComposerKey(event)) return;
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.#send();
    }
  }

  #filesChosen(): void {
    const files = Array.from(this.#fileInput.files ?? []);
    this.#fileInput.value = '';
    if (files.length > 0) this.#filesHandler?.(files);
    this.#input.focus();
  }

  #send(): void {
    const text = this.#input.value;
    if (text.trim().length === 0 || this.#session === null) return;
    // Never cut a text: one over the limit stays in the composer, with why.
    const tooLong = textTooLongText(text.length, MAX_TEXT_CHARS);
    this.#showComposerError(tooLong);
    if (tooLong !== null) return;
    this.#session.sendText(text, this.#actions.takeReply());
    this.#unseen.clear();
    this.#input.value = '';
    this.#input.focus();
  }

  #showComposerError(text: string | null): void {
    this.#composerError.textContent = text ?? '';
    this.#composerError.hidden = text === null;
    this.#input.toggleAttribute('aria-invalid', text !== null);
  }

  /** A failed text goes back to the composer (before what is there) and leaves the timeline. */
  #editFailed(id: string, text: string): void {
    const current = this.#input.value;
    this.#input.value = current.trim().length === 0 ? text : `${text}\n${current}`;
    this.#removeItem(id);
    this.#input.focus();
    this.#input.setSelectionRange(text.length, text.length);
  }

  #removeItem(id: string): void {
    const li = this.#items.get(id);
    li?.remove();
    this.#items.delete(id);
    this.#pending.delete(id);
    this.#evictedHandler?.(id);
    this.#input.focus();
  }

  async #copyInvite(): Promise<void> {
    const link = window.location.href;
    try {
      await navigator.clipboard.writeText(link);
      replaceChildren(this.#copyButton, 'Copied!');
      if (this.#copyTimer !== null) clearTimeout(this.#copyTimer);
      this.#copyTimer = setTimeout(() => replaceChildren(this.#copyButton, ...labels('Copy invite link', 'Invite')), 2000);
    } catch (e: unknown) {
      if (!(e instanceof Error)) throw e;
      this.#showLinkToCopy(link);
    }
  }

  /** Without clipboard access, show the link selected so that it can be copied by hand. */
  #showLinkToCopy(link: string): void {
    const field = h('input', { class: 'link-field', attrs: { type: 'text', readonly: true, 'aria-label': 'Invite link' } });
    field.value = link;
    const dialog = h('dialog', { class: 'dialog' },
      h('h2', { text: 'Invite link' }),
      h('p', { text: 'Copy this link and send it to the people you want in the room. Anyone with it can join and read along.' }),
      field,
      h('form', { attrs: { method: 'dialog' } }, h('button', { class: 'button primary', attrs: { type: 'submit' }, text: 'Done' })));
    dialog.addEventListener('close', () => dialog.remove());
    this.#extraDialogs.append(dialog);
    dialog.showModal();
    field.select();
  }

  async #askNotifications(): Promise<void> {
    await Attention.ask();
    this.#notifyButton.hidden = !Attention.canAsk();
  }

  #toggleMembers(): void {
    const open = this.#aside.classList.toggle('open');
    this.#membersToggle.setAttribute('aria-expanded', String(open));
  }

  /** Whether the online list is open as a drawer (only on narrow screens; wide ones always show it). */
  #drawerOpen(): boolean {
    return this.#aside.classList.contains('open') && getComputedStyle(this.#membersToggle).display !== 'none';
  }

  #closeMembers(): void {
    this.#aside.classList.remove('open');
    this.#membersToggle.setAttribute('aria-expanded', 'false');
  }

  async #leave(): Promise<void> {
    await this.#session?.leave();
    this.#hooks.left();
  }

  #evictOld(): void {
    while (this.#items.size > MAX_TIMELINE_ITEMS) {
      const [oldestId, oldest] = this.#items.entries().next().value ?? [];
      if (oldestId === undefined || oldest === undefined) break;
      oldest.remove();
      this.#items.delete(oldestId);
      this.#pending.delete(oldestId);
      this.#evictedHandler?.(oldestId);
    }
  }

  #nearBottom(): boolean {
    const el = this.#scroller;
    return el.scrollHeight - el.scrollTop - el.clientHeight < STICKY_SCROLL_PX;
  }

  #scrollToBottom(): void {
    this.#scroller.scrollTop = this.#scroller.scrollHeight;
  }
}

function isPending(item: ChatItem): boolean {
  return item.kind === 'text' && (item.status.kind === 'queued' || item.status.kind === 'sending');
}

/** Sender name, fingerprint badge and time and date of a message. */
export function messageMeta(author: Author, ts: number, direct: boolean): HTMLElement {
  const { time, date, iso } = clock(ts);
  return h('div', { class: 'meta' },
    h('span', { class: 'author' }, h('bdi', { attrs: { dir: 'auto' }, text: author.name }), author.self ? ' (you)' : null),
    authorMarks(author),
    // The badge is for eyes (a screen reader would read hex at every message); the full
    // fingerprint is in the member's dialog, where people compare keys.
    h('span', { class: 'badge', attrs: { title: `Fingerprint ${author.fingerprint}`, 'aria-hidden': 'true' }, text: shortFingerprint(author.fingerprint) }),
    h('time', { attrs: { datetime: iso }, text: `${time} · ${date}` }),
    direct ? h('span', { class: 'direct', text: 'direct' }) : null);
}

/** `text` with each of `names` in a `<bdi dir="auto">`, so a right-to-left name keeps the rest of the line in order. */
function withIsolatedNames(text: string, names: readonly string[]): (string | HTMLElement)[] {
  return nameSegments(text, names).map((segment) => segment.kind === 'text' ? segment.text : h('bdi', { attrs: { dir: 'auto' }, text: segment.text }));
}

/** A long label for wide screens and a short one for phones; CSS shows one of them. */
function labels(long: string, short: string): HTMLElement[] {
  return [h('span', { class: 'label-long', text: long }), h('span', { class: 'label-short', text: short })];
}

function e2eDialog(): HTMLDialogElement {
  return h('dialog', { class: 'dialog', attrs: { 'aria-labelledby': 'e2e-title' } },
    // The title takes the focus when it opens, so a long dialog on a small screen opens at its
    // top (an autofocused Close button at the bottom would scroll it past the title).
    h('h2', { attrs: { id: 'e2e-title', tabindex: '-1', autofocus: true }, text: 'Messages are end-to-end encrypted' }),
    h('p', { text: 'Messages, names and files are encrypted in your browser with a key made from the invite link. The part of the link after “#” never leaves your browser, so the server never has the key.' }),
    h('h3', { text: 'The server cannot see' }),
    h('ul', {},
      h('li', { text: 'what anyone writes or shares' }),
      h('li', { text: 'anyone’s name' }),
      h('li', { text: 'the room’s key or the invite link' })),
    h('h3', { text: 'The server can see' }),
    h('ul', {},
      h('li', { text: 'the room id (derived from the link, useless for decrypting)' }),
      h('li', { text: 'connection ids, and when people join and leave' }),
      h('li', { text: 'the sizes and timing of messages and files' }),
      h('li', { text: 'IP addresses' })),
    h('p', { text: 'The server could drop, delay or replay messages (replays are detected and dropped here), and it serves this page’s code: a malicious server could serve bad code. Compare fingerprints with the people you talk to, and remember that anyone with the invite link can join.' }),
    h('p', { text: 'Nothing is stored: no history is kept, and a room disappears when its last member leaves.' }),
    h('form', { attrs: { method: 'dialog' } }, h('button', { class: 'button primary', attrs: { type: 'submit' }, text: 'Close' })));
}
