//! Leaving asks first: a dialog whose default (and Escape) is to stay.

import { h } from './dom';

/** Asks whether to leave; calls `leave` only if the person confirms. */
export function confirmLeave(host: HTMLElement, leave: () => void): HTMLDialogElement {
  const dialog = h('dialog', { class: 'dialog leave-dialog', attrs: { 'aria-labelledby': 'leave-title', 'aria-describedby': 'leave-text' } },
    h('h2', { attrs: { id: 'leave-title' }, text: 'Leave the room?' }),
    h('p', { attrs: { id: 'leave-text' }, text: 'Nothing of the conversation is kept, here or on the server: once you leave you cannot read it again, and you miss what is written until you rejoin with the link.' }),
    h('form', { class: 'row', attrs: { method: 'dialog' } },
      h('button', { class: 'button', attrs: { type: 'submit', value: 'stay', autofocus: true }, text: 'Stay' }),
      h('button', { class: 'button danger', attrs: { type: 'submit', value: 'leave' }, text: 'Leave the room' })));
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (dialog.returnValue === 'leave') leave();
  });
  host.append(dialog);
  dialog.showModal();
  return dialog;
}
