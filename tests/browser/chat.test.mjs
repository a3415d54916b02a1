// Two people chat in real Chromium against the release binary: create a room, open the
// invite link in a second context, see each other with matching fingerprints, exchange
// messages with time and date, see typing, join and leave alerts; nothing breaks the CSP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AT_TIME_ON_DATE, TIME_AND_DATE, assertNoErrors, enterRoom, newPerson, say,
  waitForAlert, waitForMembers, waitForMessage,
  serverAndBrowser,
} from './browser-harness.mjs';

const env = serverAndBrowser();

test('Alice and Bob chat end to end with matching fingerprints, presence alerts and typing', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const link = alice.page.url();
  assert.match(new URL(link).hash, /^#[A-Za-z0-9_-]{43}$/, 'the invite link carries a 43-character secret');

  // The invitation asks only for a name.
  const bob = await newPerson(env.browser);
  await bob.page.goto(link);
  assert.equal(await bob.page.locator('form.name-form button[type=submit]').textContent(), 'Join the room');
  await enterRoom(bob, link, 'Bob');

  const aliceSees = await waitForMembers(alice.page, 2);
  const bobSees = await waitForMembers(bob.page, 2);
  const byName = (list, name) => list.find((member) => member.name === name);
  assert.ok(byName(aliceSees, 'Alice').self && !byName(aliceSees, 'Bob').self);
  assert.match(byName(aliceSees, 'Bob').fingerprint, /^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
  assert.equal(byName(aliceSees, 'Bob').fingerprint, byName(bobSees, 'Bob').fingerprint, 'Bob’s fingerprint is the same on both screens');
  assert.equal(byName(aliceSees, 'Alice').fingerprint, byName(bobSees, 'Alice').fingerprint, 'Alice’s fingerprint is the same on both screens');
  assert.notEqual(byName(aliceSees, 'Alice').fingerprint, byName(aliceSees, 'Bob').fingerprint);

  const joined = await waitForAlert(alice.page, 'Bob joined the chat');
  assert.match(joined, AT_TIME_ON_DATE);

  // Clicking a member shows the full fingerprint for comparison.
  await alice.page.locator('.member-list .member', { hasText: 'Bob' }).click();
  const dialog = alice.page.locator('dialog[open]');
  assert.equal(await dialog.locator('.fingerprint-large').textContent(), byName(bobSees, 'Bob').fingerprint);
  await dialog.getByRole('button', { name: 'Close' }).click();

  // The encryption status explains what the server sees.
  await alice.page.getByRole('button', { name: 'Messages are end-to-end encrypted' }).click();
  assert.match(await alice.page.locator('dialog[open]').textContent(), /The server can see.*IP addresses/s);
  await alice.page.locator('dialog[open]').getByRole('button', { name: 'Close' }).click();

  // Typing is shown to others, never to oneself.
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('hel');
  await alice.page.locator('.typing', { hasText: 'Bob is typing…' }).waitFor();
  assert.equal(await bob.page.locator('.typing').textContent(), '');

  await say(alice.page, 'Hello Bob, this is end-to-end encrypted');
  const received = await waitForMessage(bob.page, 'Alice', 'Hello Bob, this is end-to-end encrypted');
  assert.match(await received.locator('time').textContent(), TIME_AND_DATE);
  assert.match(await received.locator('time').getAttribute('datetime'), /^\d{4}-\d{2}-\d{2}T/);
  const sent = await waitForMessage(alice.page, 'Alice', 'Hello Bob, this is end-to-end encrypted');
  await sent.locator('.status').waitFor({ state: 'detached' });

  await bob.page.getByLabel('Message', { exact: true }).fill('');
  await say(bob.page, 'Hi Alice!\nTwo lines, via Shift+Enter? No: via fill.');
  const reply = await waitForMessage(alice.page, 'Bob', 'Hi Alice!\nTwo lines, via Shift+Enter? No: via fill.');
  assert.match(await reply.locator('time').textContent(), TIME_AND_DATE);
  assert.equal(await reply.locator('.badge').textContent(), byName(aliceSees, 'Bob').fingerprint.split(' ').slice(0, 2).join(' '));
  await alice.page.locator('.typing', { hasText: 'Bob is typing…' }).waitFor({ state: 'detached' });

  // Shift+Enter makes a new line instead of sending.
  const input = bob.page.getByLabel('Message', { exact: true });
  await input.pressSequentially('line one');
  await input.press('Shift+Enter');
  await input.pressSequentially('line two');
  assert.equal(await input.inputValue(), 'line one\nline two');
  await input.press('Enter');
  await waitForMessage(alice.page, 'Bob', 'line one\nline two');
  assert.equal(await input.inputValue(), '');

  // Bob closes his tab: Alice sees him leave.
  await bob.page.close({ runBeforeUnload: true });
  const left = await waitForAlert(alice.page, 'Bob left the chat');
  assert.match(left, AT_TIME_ON_DATE);
  assert.deepEqual((await waitForMembers(alice.page, 1)).map((member) => member.name), ['Alice']);

  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});

/** Pretends the tab went to the background or came back (headless tabs are always visible). */
async function setVisibility(page, state) {
  await page.evaluate((visibility) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
}

test('unread messages count in the tab title while hidden; the Leave button says so to the others', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);

  assert.equal(await bob.page.title(), 'StreamChat');
  await setVisibility(bob.page, 'hidden');
  await say(alice.page, 'one');
  await say(alice.page, 'two');
  await waitForMessage(bob.page, 'Alice', 'two');
  assert.equal(await bob.page.title(), '(2) StreamChat');
  await setVisibility(bob.page, 'visible');
  assert.equal(await bob.page.title(), 'StreamChat');
  // Permission for notifications is asked only on a click, never on load.
  assert.equal(await bob.page.evaluate(() => Notification.permission), 'default');
  await bob.page.getByRole('button', { name: 'Enable notifications' }).waitFor();
  await bob.page.getByRole('button', { name: 'Leave' }).click();
  await bob.page.getByRole('dialog').getByRole('button', { name: 'Leave the room' }).click();
  await bob.page.getByRole('heading', { name: 'You left the room' }).waitFor();
  const left = await waitForAlert(alice.page, 'Bob left the chat');
  assert.doesNotMatch(left, /\(disconnected\)|\(timed out\)/, 'a Leave is reported as leaving, not as a lost connection');
  await waitForMembers(alice.page, 1);
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});
