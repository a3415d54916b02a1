//! Someone who opens an invite link and finds the room empty is told so plainly: the
//! link may be mistyped, or everyone may have left. They can stay and wait; the note
//! goes as soon as someone is there. Never shown to the creator of a new room.

import type { MemberView } from '../room';
import { h } from './dom';

export interface Timeline {
  addElement(id: string, li: HTMLLIElement, fromOthers: { name: string; text: string } | null): void;
}

export class NobodyHere {
  #checked = false;
  #note: HTMLLIElement | null = null;

  /** `invited`: the room was opened from a link (not created on this page). */
  constructor(private readonly timeline: Timeline, private readonly invited: boolean) {}

  members(members: readonly MemberView[]): void {
    if (this.#note !== null && members.some((member) => !member.self)) {
      this.#note.remove();
      this.#note = null;
    }
    // The first list is the room as the join found it.
    if (this.#checked) return;
    this.#checked = true;
    if (!this.invited || members.some((member) => !member.self)) return;
    this.#note = h('li', { class: 'nobody-here', attrs: { 'data-id': 'nobody-here' } },
      h('p', { class: 'nobody-title', text: 'Nobody is here: check the link.' }),
      h('p', { text: 'You opened an invite link, but nobody else is in this room. The link may be mistyped or cut short, or everyone may have left: a room exists only while someone is in it, and it is gone with the last person.' }),
      h('p', { text: 'If the link is right, you can stay: you will see people as soon as they open it.' }));
    this.timeline.addElement('nobody-here', this.#note, null);
  }
}
