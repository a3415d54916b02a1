//! The Share dialog: the invite link to copy, a QR code of it to scan with a phone (made
//! here, by qr.ts: nothing is fetched), and a plain warning that anyone with the link
//! can join and read.

import { encodeText } from '../qr';
import { h } from './dom';

/** Light modules around the code, as the standard asks. */
const QUIET_ZONE = 4;
/** Canvas pixels per module (CSS scales the canvas down to fit). */
const PIXELS_PER_MODULE = 8;

/**
 * The header's Share button (a QR code icon; on phones, where it stands in for "Copy
 * invite link", also the word "Invite"); its dialog goes into `host`.
 */
export function shareButton(host: HTMLElement): HTMLButtonElement {
  return h('button', {
    class: 'button share-button',
    attrs: { type: 'button', 'aria-haspopup': 'dialog', 'aria-label': 'Share invite link', title: 'Share the invite link, with a QR code' },
    on: { click: () => openShareDialog(host, window.location.href) },
  }, h('span', { class: 'qr-icon', attrs: { 'aria-hidden': 'true' } }), h('span', { class: 'share-text', text: 'Invite' }));
}

export function openShareDialog(host: HTMLElement, link: string): HTMLDialogElement {
  const field = h('input', { class: 'link-field', attrs: { id: 'share-link', type: 'text', readonly: true } });
  field.value = link;
  const copied = h('span', { class: 'share-copied', attrs: { role: 'status' } });
  const copy = h('button', {
    class: 'button primary', attrs: { type: 'button' }, text: 'Copy link',
    on: {
      click: () => {
        field.select();
        navigator.clipboard.writeText(link).then(
          () => { copied.textContent = 'Copied.'; },
          () => { copied.textContent = 'Select the link and copy it (Ctrl+C or ⌘C).'; },
        );
      },
    },
  });
  const dialog = h('dialog', { class: 'dialog share-dialog', attrs: { 'aria-labelledby': 'share-title' } },
    h('h2', { attrs: { id: 'share-title', tabindex: '-1', autofocus: true }, text: 'Invite people' }),
    h('p', { class: 'notice-box', text: link.includes('#2.')
      ? 'Anyone with this link can ask to be let in: someone in the room must let them in before they can read anything. Send it only to the people you want here, over a channel you trust.'
      : 'Anyone with this link can join the room and read everything written while they are in it. Send it only to the people you want here, over a channel you trust.' }),
    h('label', { attrs: { for: 'share-link' }, text: 'Invite link' }),
    field,
    h('div', { class: 'row share-copy' }, copy, copied),
    h('figure', { class: 'qr' },
      qrCanvas(link),
      h('figcaption', { text: 'Or scan this code with a phone’s camera to open the room there. It holds the same link, key included: show it only to the people you invite.' })),
    h('form', { attrs: { method: 'dialog' } }, h('button', { class: 'button', attrs: { type: 'submit' }, text: 'Close' })));
  dialog.addEventListener('close', () => dialog.remove());
  host.append(dialog);
  dialog.showModal();
  return dialog;
}

/** The QR code of `text`, dark on white whatever the theme (scanners expect it). */
function qrCanvas(text: string): HTMLCanvasElement {
  const code = encodeText(text);
  const modules = code.size + 2 * QUIET_ZONE;
  const canvas = h('canvas', {
    class: 'qr-code',
    attrs: { role: 'img', 'aria-label': 'QR code of the invite link', width: String(modules * PIXELS_PER_MODULE), height: String(modules * PIXELS_PER_MODULE), 'data-version': String(code.version) },
  });
  const context = canvas.getContext('2d');
  if (context === null) return canvas;
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = '#000000';
  code.dark.forEach((row, y) => row.forEach((dark, x) => {
    if (dark) context.fillRect((x + QUIET_ZONE) * PIXELS_PER_MODULE, (y + QUIET_ZONE) * PIXELS_PER_MODULE, PIXELS_PER_MODULE, PIXELS_PER_MODULE);
  }));
  return canvas;
}
