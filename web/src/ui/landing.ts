//! The screens before and after a chat: create a room or accept an invitation (asking
//! only for a name), the page shown after leaving, and the explanations shown instead
//! of the chat when it cannot run (no secure context, no WebCrypto Ed25519).

import { MAX_NAME_CHARS, cleanName } from '../content';
import type { RoomKind } from '../crypto';
import { h } from './dom';
import { rememberNameField } from './remember';

export interface NameFormOptions {
  readonly invited: boolean;
  /** The kind of room the invite link names (only with `invited`). */
  readonly kind?: RoomKind;
  /** Shown above the form, e.g. that an invite link was damaged. */
  readonly problem?: string;
  /** With the kind of room chosen (a new room), or the link's. */
  readonly submit: (name: string, kind: RoomKind) => void;
}

/** The kinds of room a new room can be (docs/crypto.md §17.1); the first is the default. */
const ROOM_KINDS: readonly { readonly kind: RoomKind; readonly label: string; readonly hint: string }[] = [
  { kind: 'knock', label: 'Ask before letting people in', hint: 'Someone in the room lets each newcomer in; keys change whenever someone joins or leaves.' },
  { kind: 'open', label: 'Anyone with the link, new keys on every join and leave', hint: 'Newcomers are let in automatically; whoever left cannot read what follows.' },
  { kind: 'v1', label: 'Anyone with the link, one key for the whole room', hint: 'As rooms were before: the key is in the link, so whoever ever had the link can read along.' },
];

/** The choice of a new room's kind: three radio buttons, the first (knock) checked. */
function roomKindField(): { readonly element: HTMLElement; readonly value: () => RoomKind } {
  const radios = ROOM_KINDS.map(({ kind, label, hint }, index) => {
    const input = h('input', { attrs: { type: 'radio', name: 'room-kind', value: kind, id: `room-kind-${kind}`, 'aria-describedby': `room-kind-${kind}-hint` } });
    input.checked = index === 0;
    return { kind, input, element: h('div', { class: 'room-kind' },
      input,
      h('label', { attrs: { for: `room-kind-${kind}` }, text: label }),
      h('span', { class: 'hint', attrs: { id: `room-kind-${kind}-hint` }, text: hint })) };
  });
  return {
    element: h('fieldset', { class: 'room-kinds' }, h('legend', { text: 'Who can get in' }), ...radios.map((r) => r.element)),
    value: () => radios.find((r) => r.input.checked)?.kind ?? 'knock',
  };
}

/** Landing page: "Create a room", or "Join the room" when opened from an invite link. */
export function nameForm(options: NameFormOptions): HTMLElement {
  const input = h('input', {
    class: 'name-input',
    attrs: { id: 'name-input', type: 'text', required: true, maxlength: String(MAX_NAME_CHARS), autocomplete: 'nickname', spellcheck: 'false', placeholder: 'e.g. Alice' },
  });
  const error = h('p', { class: 'form-error', attrs: { role: 'alert', id: 'name-error' } });
  const button = h('button', { class: 'button primary big', attrs: { type: 'submit' }, text: options.invited ? 'Join the room' : 'Create a room' });
  const remember = rememberNameField(input);
  const kinds = options.invited ? null : roomKindField();
  const form = h('form', {
    class: 'name-form',
    on: {
      submit: (event) => {
        event.preventDefault();
        const name = cleanName(input.value);
        if (name.length === 0) {
          error.textContent = 'Please enter a name: it is how the others will see you.';
          input.setAttribute('aria-invalid', 'true');
          input.focus();
          return;
        }
        remember.submitted(name);
        button.disabled = true;
        button.textContent = options.invited ? 'Joining…' : 'Creating…';
        options.submit(name, kinds?.value() ?? options.kind ?? 'v1');
      },
    },
  },
  h('label', { attrs: { for: 'name-input' }, text: 'Your name' }),
  input,
  error,
  remember.element,
  kinds?.element ?? null,
  button);
  input.setAttribute('aria-describedby', 'name-error');

  const page = h('main', { class: 'landing' },
    h('div', { class: 'card' },
      h('div', { class: 'brand big' }, h('span', { class: 'logo', attrs: { 'aria-hidden': 'true' } }), h('h1', { text: 'StreamChat' })),
      h('p', { class: 'lede', text: options.invited ? 'You have been invited to a private room.' : 'Private group chat, end-to-end encrypted. Nothing is stored.' }),
      options.invited && options.kind === 'knock' ? h('p', { class: 'hint', text: 'Someone in the room will have to let you in.' }) : null,
      options.problem === undefined ? null : h('p', { class: 'notice-box', attrs: { role: 'alert' }, text: options.problem }),
      form,
      h('ul', { class: 'points' },
        h('li', { text: 'Messages are end-to-end encrypted: the server only relays ciphertext.' }),
        h('li', { text: pointAboutTheLink(options) }),
        h('li', { text: 'No accounts and no history: close the tab and you are gone.' }))));
  queueMicrotask(() => input.focus());
  return page;
}

/** Who can read along, as the landing page says it for a new room or the invite's kind. */
function pointAboutTheLink(options: NameFormOptions): string {
  if (!options.invited) return 'You get an invite link to share; its secret never reaches the server.';
  switch (options.kind) {
    case 'knock': return 'Only people someone here lets in can read along, and only from then on.';
    case 'open': return 'People with the invite link can read along from when they join, not before and not after they leave.';
    default: return 'Only people with the invite link can read along.';
  }
}

/** Shown after pressing Leave. */
export function leftPage(rejoin: () => void, home: () => void): HTMLElement {
  return h('main', { class: 'landing' },
    h('div', { class: 'card' },
      h('h1', { text: 'You left the room' }),
      h('p', { class: 'lede', text: 'Nothing of the conversation was kept, on this device or on the server.' }),
      h('div', { class: 'row' },
        h('button', { class: 'button primary', attrs: { type: 'button' }, text: 'Rejoin', on: { click: rejoin } }),
        h('button', { class: 'button', attrs: { type: 'button' }, text: 'Start a new room', on: { click: home } }))));
}

/** Shown instead of the chat when the browser cannot do what it needs. */
export function cannotRun(title: string, ...paragraphs: string[]): HTMLElement {
  return h('main', { class: 'landing' },
    h('div', { class: 'card', attrs: { role: 'alert' } },
      h('div', { class: 'brand big' }, h('span', { class: 'logo', attrs: { 'aria-hidden': 'true' } }), h('h1', { text: 'StreamChat' })),
      h('h2', { text: title }),
      ...paragraphs.map((text) => h('p', { text }))));
}
