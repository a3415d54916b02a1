//! Whom to trust, as Signal does with safety numbers: a name already seen in this room
//! that comes back with another identity key, and two people present under the same
//! name, are warned about and marked; a key this person verified (by comparing
//! fingerprints) is marked as verified, and a verified name back with another key is
//! warned about loudly. Pure logic over the member list; no DOM, no network.

import { shortFingerprint } from './format';
import type { VerifiedKeys } from './prefs';

export interface TrustMember {
  readonly name: string;
  readonly key: string;
  readonly fingerprint: string;
  readonly self: boolean;
}

export type TrustAlert =
  /** Two or more people present have the same name (`self` if this person is one of them). */
  | { readonly kind: 'same-name'; readonly name: string; readonly fingerprints: readonly string[]; readonly self: boolean; readonly verified: string | null }
  /** A name seen before in this room is back with another key. */
  | { readonly kind: 'key-changed'; readonly name: string; readonly fingerprint: string; readonly previous: string; readonly wasVerified: boolean };

export interface TrustMarks {
  readonly verified: boolean;
  /** Their name was seen in this room with another key. */
  readonly keyChanged: boolean;
  /** Someone else present has the same name. */
  readonly sameName: boolean;
}

/** Names compared as people read them: Unicode-normalized, case and spacing ignored. */
export function sameNameKey(name: string): string {
  return name.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

/** Bounds of what is remembered about people who were here. */
const MAX_NAMES = 1024;

export class TrustBook {
  readonly #verified: VerifiedKeys;
  /** Every key seen in this room, by name: the last one first. */
  readonly #seen = new Map<string, { key: string; fingerprint: string }[]>();
  readonly #keys = new Set<string>();
  readonly #changed = new Set<string>();
  /** Groups of keys already warned about, so that each group is told once. */
  readonly #groupsTold = new Set<string>();
  #present: readonly TrustMember[] = [];
  readonly #fingerprints = new Map<string, string>();

  constructor(verified: VerifiedKeys) {
    this.#verified = verified;
  }

  /** The members present now (after every change); returns what to warn about, once each. */
  update(members: readonly TrustMember[]): TrustAlert[] {
    const alerts: TrustAlert[] = [];
    const presentKeys = new Set(members.map((member) => member.key));
    for (const member of members) {
      this.#fingerprints.set(member.fingerprint, member.key);
      if (this.#keys.has(member.key)) continue;
      this.#keys.add(member.key);
      const name = sameNameKey(member.name);
      const before = this.#seen.get(name) ?? [];
      // Present at the same time: the same-name warning below says it.
      const gone = before.filter((seen) => seen.key !== member.key && !presentKeys.has(seen.key));
      const last = gone[0];
      if (last !== undefined && !before.some((seen) => presentKeys.has(seen.key) && seen.key !== member.key) && !member.self) {
        this.#changed.add(member.key);
        alerts.push({
          kind: 'key-changed', name: member.name, fingerprint: member.fingerprint, previous: last.fingerprint,
          wasVerified: gone.some((seen) => this.#verified.has(seen.key)),
        });
      }
      this.#seen.delete(name);
      this.#seen.set(name, [{ key: member.key, fingerprint: member.fingerprint }, ...before].slice(0, 8));
      if (this.#seen.size > MAX_NAMES) this.#seen.delete(this.#seen.keys().next().value ?? '');
    }
    for (const group of this.#sameNameGroups(members)) {
      const id = group.map((member) => member.key).sort().join(' ');
      if (this.#groupsTold.has(id)) continue;
      this.#groupsTold.add(id);
      const verified = group.find((member) => !member.self && this.#verified.has(member.key));
      alerts.push({
        kind: 'same-name', name: group[0]!.name, fingerprints: group.map((member) => member.fingerprint),
        self: group.some((member) => member.self), verified: verified?.fingerprint ?? null,
      });
    }
    this.#present = members;
    return alerts;
  }

  marks(key: string): TrustMarks {
    const member = this.#present.find((present) => present.key === key);
    const sameName = member !== undefined
      && this.#present.some((other) => other.key !== key && sameNameKey(other.name) === sameNameKey(member.name));
    return { verified: this.#verified.has(key), keyChanged: this.#changed.has(key), sameName };
  }

  /** The key behind a fingerprint seen in this room (messages carry only the fingerprint). */
  keyOf(fingerprint: string): string | undefined {
    return this.#fingerprints.get(fingerprint);
  }

  isVerified(key: string): boolean {
    return this.#verified.has(key);
  }

  setVerified(member: TrustMember, verified: boolean): void {
    this.#verified.set(member.key, member.name, verified);
  }

  #sameNameGroups(members: readonly TrustMember[]): TrustMember[][] {
    const byName = new Map<string, TrustMember[]>();
    for (const member of members) {
      const name = sameNameKey(member.name);
      byName.set(name, [...(byName.get(name) ?? []), member]);
    }
    return [...byName.values()].filter((group) => group.length > 1);
  }
}

function count(n: number): string {
  return n === 2 ? 'Two' : String(n);
}

/** The alert's sentence; names appear exactly as given (the UI isolates them). */
export function trustAlertText(alert: TrustAlert): string {
  switch (alert.kind) {
    case 'same-name': {
      const prints = alert.fingerprints.map(shortFingerprint).join(', ');
      const who = alert.self
        ? `${count(alert.fingerprints.length)} people here, you included, are called ${alert.name}`
        : `${count(alert.fingerprints.length)} people here are called ${alert.name}`;
      const verified = alert.verified === null ? '' : ` Only the one with fingerprint ${shortFingerprint(alert.verified)} is the ${alert.name} you verified.`;
      return `${who}: tell them apart by their fingerprints (${prints}), and compare fingerprints before trusting either.${verified}`;
    }
    case 'key-changed':
      return alert.wasVerified
        ? `Warning: ${alert.name} was verified, but is back with a different key (fingerprint ${shortFingerprint(alert.fingerprint)}, not ${shortFingerprint(alert.previous)}). This is not the person you verified unless you compare fingerprints again.`
        : `${alert.name} is back with a different key (fingerprint ${shortFingerprint(alert.fingerprint)}, before ${shortFingerprint(alert.previous)}). It may be the same person in a new tab, or someone else using the name: compare fingerprints to be sure.`;
  }
}
