// Trust marks and warnings (trust.ts) and what the browser remembers (prefs.ts), with a
// fake storage: same names, keys that change, verified keys, notification privacy.
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_NOTIFICATION_PRIVACY, type KeyValueStore, MAX_VERIFIED_KEYS, notificationContent, notificationPrivacy, rememberName,
  rememberedName, setNotificationPrivacy, verifiedKeys,
} from '../src/prefs';
import { type TrustMember, TrustBook, sameNameKey, trustAlertText } from '../src/trust';

function fakeStore(): KeyValueStore & { readonly data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (key) => data.get(key) ?? null,
    setItem: (key, value) => { data.set(key, value); },
    removeItem: (key) => { data.delete(key); },
  };
}

const me: TrustMember = { name: 'Alice', key: 'KEY-ALICE', fingerprint: 'aaaa 1111 2222 3333 4444', self: true };
const bob: TrustMember = { name: 'Bob', key: 'KEY-BOB-1', fingerprint: 'b0b1 1111 2222 3333 4444', self: false };
const bobAgain: TrustMember = { name: 'Bob', key: 'KEY-BOB-2', fingerprint: 'b0b2 5555 6666 7777 8888', self: false };
const otherBob: TrustMember = { name: 'bob ', key: 'KEY-BOB-3', fingerprint: 'b0b3 9999 0000 1111 2222', self: false };

describe('TrustBook', () => {
  it('says nothing about people with distinct names', () => {
    const book = new TrustBook(verifiedKeys(fakeStore()));
    expect(book.update([me])).toEqual([]);
    expect(book.update([me, bob])).toEqual([]);
    expect(book.marks(bob.key)).toEqual({ verified: false, keyChanged: false, sameName: false });
  });

  it('warns once when a name seen in this room comes back with another key, and marks that member', () => {
    const book = new TrustBook(verifiedKeys(fakeStore()));
    book.update([me, bob]);
    book.update([me]);
    const alerts = book.update([me, bobAgain]);
    expect(alerts).toEqual([{ kind: 'key-changed', name: 'Bob', fingerprint: bobAgain.fingerprint, previous: bob.fingerprint, wasVerified: false }]);
    expect(trustAlertText(alerts[0]!)).toBe('Bob is back with a different key (fingerprint b0b2 5555, before b0b1 1111). It may be the same person in a new tab, or someone else using the name: compare fingerprints to be sure.');
    expect(book.marks(bobAgain.key)).toMatchObject({ keyChanged: true, verified: false });
    // Told once; the same Bob reconnecting (same key) is no news.
    expect(book.update([me, bobAgain])).toEqual([]);
    book.update([me]);
    expect(book.update([me, bobAgain])).toEqual([]);
  });

  it('says so loudly when a verified name comes back with another key', () => {
    const store = fakeStore();
    const book = new TrustBook(verifiedKeys(store));
    book.update([me, bob]);
    book.setVerified(bob, true);
    expect(book.marks(bob.key).verified).toBe(true);
    book.update([me]);
    const [alert] = book.update([me, bobAgain]);
    expect(alert).toMatchObject({ kind: 'key-changed', wasVerified: true });
    expect(trustAlertText(alert!)).toBe('Warning: Bob was verified, but is back with a different key (fingerprint b0b2 5555, not b0b1 1111). This is not the person you verified unless you compare fingerprints again.');
    expect(book.marks(bobAgain.key)).toEqual({ verified: false, keyChanged: true, sameName: false });
  });

  it('marks every present member who shares a name (case, spacing and Unicode forms aside) and warns once per group', () => {
    const book = new TrustBook(verifiedKeys(fakeStore()));
    book.update([me, bob]);
    const alerts = book.update([me, bob, otherBob]);
    expect(alerts).toEqual([{ kind: 'same-name', name: 'Bob', fingerprints: [bob.fingerprint, otherBob.fingerprint], self: false, verified: null }]);
    expect(trustAlertText(alerts[0]!)).toBe('Two people here are called Bob: tell them apart by their fingerprints (b0b1 1111, b0b3 9999), and compare fingerprints before trusting either.');
    expect(book.marks(bob.key).sameName).toBe(true);
    expect(book.marks(otherBob.key).sameName).toBe(true);
    expect(book.marks(me.key).sameName).toBe(false);
    // Not a changed key: the first Bob is still here.
    expect(book.marks(otherBob.key).keyChanged).toBe(false);
    expect(book.update([me, bob, otherBob])).toEqual([]);
    // Once one leaves, nobody is marked any more.
    book.update([me, bob]);
    expect(book.marks(bob.key).sameName).toBe(false);
    expect(sameNameKey('ＡＬＩＣＥ  ')).toBe(sameNameKey('alice'));
  });

  it('includes this person, and names the verified one', () => {
    const book = new TrustBook(verifiedKeys(fakeStore()));
    book.update([me, bob]);
    book.setVerified(bob, true);
    const impostor: TrustMember = { name: 'Alice', key: 'KEY-X', fingerprint: 'dead beef 0000 0000 0000', self: false };
    expect(trustAlertText(book.update([me, bob, impostor])[0]!)).toBe('Two people here, you included, are called Alice: tell them apart by their fingerprints (aaaa 1111, dead beef), and compare fingerprints before trusting either.');
    const bobImpostor: TrustMember = { ...bobAgain, name: 'BOB' };
    expect(trustAlertText(book.update([me, bob, impostor, bobImpostor])[0]!)).toMatch(/Only the one with fingerprint b0b1 1111 is the Bob you verified\.$/);
  });

  it('maps fingerprints to keys for marks on messages', () => {
    const book = new TrustBook(verifiedKeys(fakeStore()));
    book.update([me, bob]);
    expect(book.keyOf(bob.fingerprint)).toBe(bob.key);
    expect(book.keyOf('ffff ffff ffff ffff ffff')).toBeUndefined();
  });
});

describe('what the browser remembers', () => {
  it('remembers verified keys by public key, survives a new page, forgets on request, and is bounded', () => {
    const store = fakeStore();
    let t = 0;
    const first = verifiedKeys(store, () => ++t);
    first.set('K1', 'Bob', true);
    expect(verifiedKeys(store).has('K1')).toBe(true);
    expect(JSON.parse(store.data.get('streamchat.verified')!)).toEqual({ K1: { name: 'Bob', at: 1 } });
    first.set('K1', 'Bob', false);
    expect(verifiedKeys(store).has('K1')).toBe(false);
    for (let i = 0; i < MAX_VERIFIED_KEYS + 5; i++) first.set(`K${i}`, 'x', true);
    const kept = Object.keys(JSON.parse(store.data.get('streamchat.verified')!) as object);
    expect(kept).toHaveLength(MAX_VERIFIED_KEYS);
    expect(kept).not.toContain('K0');
    store.data.set('streamchat.verified', 'not json');
    expect(verifiedKeys(store).has('K9')).toBe(false);
  });

  it('works for the page alone without storage', () => {
    const keys = verifiedKeys(null);
    keys.set('K', 'Bob', true);
    expect(keys.has('K')).toBe(true);
  });

  it('remembers a name only when asked, and forgets it', () => {
    const store = fakeStore();
    expect(rememberedName(store)).toBeNull();
    rememberName('Alice', store);
    expect(rememberedName(store)).toBe('Alice');
    rememberName(null, store);
    expect(rememberedName(store)).toBeNull();
    expect(store.data.size).toBe(0);
    const broken: KeyValueStore = { getItem: () => { throw new Error('denied'); }, setItem: () => { throw new Error('denied'); }, removeItem: () => undefined };
    expect(rememberedName(broken)).toBeNull();
    expect(rememberName('Alice', broken)).toBe(false);
  });

  it('notifications show the name only by default; full text or nothing when chosen', () => {
    const store = fakeStore();
    expect(DEFAULT_NOTIFICATION_PRIVACY).toBe('name');
    expect(notificationPrivacy(store)).toBe('name');
    setNotificationPrivacy('nothing', store);
    expect(notificationPrivacy(store)).toBe('nothing');
    store.data.set('streamchat.notifications', 'everything');
    expect(notificationPrivacy(store)).toBe('name');
    expect(notificationContent('full', 'Bob', 'meet at 9')).toEqual({ title: 'Bob — StreamChat', body: 'meet at 9' });
    expect(notificationContent('full', 'Bob', 'x'.repeat(200)).body).toBe(`${'x'.repeat(120)}…`);
    expect(notificationContent('name', 'Bob', 'meet at 9')).toEqual({ title: 'Bob — StreamChat', body: 'New message' });
    expect(notificationContent('nothing', 'Bob', 'meet at 9')).toEqual({ title: 'StreamChat', body: 'New message' });
  });
});
