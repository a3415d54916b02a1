//! Trust on screen: marks beside names in the online list and on messages ("Verified",
//! "Same name", "New key"), the "Mark as verified" control of the fingerprint dialog,
//! and the warnings in the timeline. One TrustBook per page (one room per page); verified
//! keys are kept in this browser only (prefs.ts).

import { nameSegments } from '../format';
import { verifiedKeys } from '../prefs';
import type { Author, MemberView } from '../room';
import { type TrustAlert, type TrustMarks, TrustBook, trustAlertText } from '../trust';
import { h, replaceChildren } from './dom';

let book: TrustBook | null = null;

function trustBook(): TrustBook {
  book ??= new TrustBook(verifiedKeys());
  return book;
}

/** The member list changed: what to warn about (each once). */
export function trustMembers(members: readonly MemberView[]): TrustAlert[] {
  return trustBook().update(members);
}

function marksOf(key: string, self: boolean): HTMLElement[] {
  const marks: TrustMarks = trustBook().marks(key);
  return [
    marks.verified && !self ? h('span', { class: 'mark verified', attrs: { title: 'You compared fingerprints and marked this key as verified in this browser' }, text: 'Verified' }) : null,
    marks.sameName ? h('span', { class: 'mark warn', attrs: { title: 'Someone else here has the same name: tell them apart by fingerprint' }, text: 'Same name' }) : null,
    marks.keyChanged && !marks.verified ? h('span', { class: 'mark warn', attrs: { title: 'This name was here before with another key' }, text: 'New key' }) : null,
  ].filter((mark): mark is HTMLElement => mark !== null);
}

/** Marks beside a name in the online list. */
export function memberMarks(member: MemberView): HTMLElement {
  return h('span', { class: 'trust-marks', attrs: { 'data-key': member.key, ...(member.self ? { 'data-self': '' } : {}) } }, ...marksOf(member.key, member.self));
}

/** Marks beside the author of a message (empty until there is something to say). */
export function authorMarks(author: Author): HTMLElement | null {
  if (author.self) return null;
  const span = h('span', { class: 'trust-marks', attrs: { 'data-fingerprint': author.fingerprint } });
  fill(span);
  return span;
}

function fill(span: HTMLElement): void {
  const self = span.hasAttribute('data-self');
  const key = span.dataset.key ?? trustBook().keyOf(span.dataset.fingerprint ?? '');
  replaceChildren(span, ...(key === undefined ? [] : marksOf(key, self)));
}

/** Brings every mark under `root` up to date (after a verification or a change of members). */
export function refreshMarks(root: ParentNode = document): void {
  for (const span of root.querySelectorAll<HTMLElement>('.trust-marks')) fill(span);
}

/** "Mark as verified" in someone's fingerprint dialog. */
export function verifyControl(member: MemberView): HTMLElement {
  const status = h('p', { class: 'verify-status', attrs: { role: 'status' } });
  const button = h('button', { class: 'button', attrs: { type: 'button' } });
  const show = (): void => {
    const verified = trustBook().isVerified(member.key);
    replaceChildren(status, verified
      ? h('span', { class: 'mark verified', text: 'Verified' })
      : 'Not verified yet.', verified ? ' You marked this key as verified. It is remembered in this browser only.' : null);
    button.textContent = verified ? 'Remove the verified mark' : 'Mark as verified';
    button.classList.toggle('primary', !verified);
  };
  button.addEventListener('click', () => {
    trustBook().setVerified(member, !trustBook().isVerified(member.key));
    show();
    refreshMarks();
  });
  show();
  return h('div', { class: 'verify' },
    status,
    h('p', { class: 'hint', text: 'Mark it as verified once the fingerprint they read out matches: their name then shows “Verified” here and on their messages, and you are warned if the name comes back with another key. Nothing is sent to anyone.' }),
    button);
}

/** A trust warning as a timeline item. */
export function trustAlertItem(alert: TrustAlert, id: string): HTMLLIElement {
  const loud = alert.kind === 'key-changed' && alert.wasVerified;
  const names = alert.kind === 'same-name' && alert.verified !== null ? [alert.name, alert.name] : [alert.name];
  return h('li', { class: ['alert', 'warning', 'trust-alert', loud && 'loud'], attrs: { 'data-id': id } },
    h('span', { class: 'alert-text' }, ...nameSegments(trustAlertText(alert), names).map((segment) =>
      segment.kind === 'text' ? segment.text : h('bdi', { attrs: { dir: 'auto' }, text: segment.text }))));
}
