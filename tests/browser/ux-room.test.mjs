// The room features of issue #18, as people meet them: trust warnings (a name back with
// another key, two people with one name) and the "Verified" mark after comparing
// fingerprints; the Share dialog with the link and a QR code a phone can read; leaving
// asks first; a name remembered by choice; what desktop notifications show; and
// "Nobody is here: check the link" for a link that leads to an empty room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  assertNoErrors, enterRoom, newPerson, say, waitForAlert, waitForMembers, waitForMessage, serverAndBrowser,
} from './browser-harness.mjs';

const env = serverAndBrowser({ workDir: 'streamchat-ux-room-' });

/** The online list entry of the member called `name` (the n-th of that name). */
function listed(page, name, nth = 0) {
  return page.locator('.member-list .member').filter({ has: page.locator('.member-name bdi', { hasText: new RegExp(`^${name}$`) }) }).nth(nth);
}

async function marks(locator) {
  return (await locator.locator('.trust-marks .mark').allTextContents()).sort();
}

async function leaveRoom(person) {
  await person.page.getByRole('button', { name: 'Leave' }).click();
  await person.page.getByRole('dialog').getByRole('button', { name: 'Leave the room' }).click();
  await person.page.getByRole('heading', { name: 'You left the room' }).waitFor();
}

test('two people with one name are both marked, with a warning that says how to tell them apart', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  assert.deepEqual(await marks(listed(alice.page, 'Bob')), [], 'one Bob: no mark');

  const fake = await newPerson(env.browser);
  await enterRoom(fake, alice.page.url(), 'Bob');
  const members = await waitForMembers(alice.page, 3);
  const [first, second] = members.filter((member) => member.name === 'Bob').map((member) => member.fingerprint.split(' ').slice(0, 2).join(' '));
  const warning = await waitForAlert(alice.page, 'Two people here are called Bob');
  assert.equal(warning, `Two people here are called Bob: tell them apart by their fingerprints (${first}, ${second}), and compare fingerprints before trusting either.`);
  const alert = alice.page.locator('li.alert.trust-alert').first();
  assert.equal(await alert.locator('bdi').textContent(), 'Bob', 'the name is isolated');
  assert.deepEqual(await marks(listed(alice.page, 'Bob', 0)), ['Same name']);
  assert.deepEqual(await marks(listed(alice.page, 'Bob', 1)), ['Same name']);
  assert.deepEqual(await marks(listed(alice.page, 'Alice')), []);
  // The mark is on their messages too, and it is read out (it is words, not hex).
  await say(fake.page, 'It is me, Bob, send me the code');
  const message = await waitForMessage(alice.page, 'Bob', 'It is me, Bob, send me the code');
  assert.deepEqual(await marks(message), ['Same name']);
  assert.match(await message.ariaSnapshot(), /Same name/);
  // The same warning reaches the real Bob, who sees himself counted.
  await waitForAlert(bob.page, 'Two people here, you included, are called Bob');

  // Once the second Bob has gone, nobody is marked.
  await leaveRoom(fake);
  await waitForMembers(alice.page, 2);
  assert.deepEqual(await marks(listed(alice.page, 'Bob')), []);
  assert.deepEqual(await marks(message), []);
  for (const person of [alice, bob, fake]) {
    assertNoErrors(person, 'person');
    await person.context.close();
  }
});

test('a name back with another key is warned about; a verified one loudly; the verified mark is kept in this browser only', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const link = alice.page.url();
  const bob = await newPerson(env.browser);
  await enterRoom(bob, link, 'Bob');
  const carol = await newPerson(env.browser);
  await enterRoom(carol, link, 'Carol');
  await waitForMembers(alice.page, 3);
  await say(bob.page, 'Hello from the real Bob');
  const bobsMessage = await waitForMessage(alice.page, 'Bob', 'Hello from the real Bob');
  assert.deepEqual(await marks(bobsMessage), []);

  // Alice compares Bob's fingerprint and marks it as verified, with the keyboard.
  await listed(alice.page, 'Bob').focus();
  await alice.page.keyboard.press('Enter');
  const dialog = alice.page.getByRole('dialog');
  await dialog.getByText('Not verified yet.').waitFor();
  await dialog.getByRole('button', { name: 'Mark as verified' }).focus();
  await alice.page.keyboard.press('Enter');
  await dialog.getByRole('status').filter({ hasText: 'remembered in this browser only' }).waitFor();
  assert.equal(await dialog.getByRole('button', { name: 'Remove the verified mark' }).count(), 1);
  await alice.page.keyboard.press('Escape');
  assert.deepEqual(await marks(listed(alice.page, 'Bob')), ['Verified']);
  assert.deepEqual(await marks(bobsMessage), ['Verified'], 'on his messages too');
  assert.deepEqual(await marks(listed(alice.page, 'Carol')), []);
  // Stored in this browser, keyed by Bob's public key (which hashes to his fingerprint), and nothing else.
  const stored = await alice.page.evaluate(() => ({ ...localStorage }));
  assert.deepEqual(Object.keys(stored), ['streamchat.verified']);
  const [[bobKey, entry]] = Object.entries(JSON.parse(stored['streamchat.verified']));
  assert.equal(entry.name, 'Bob');
  const bobFingerprint = (await waitForMembers(bob.page, 3)).find((member) => member.self).fingerprint;
  const digest = await alice.page.evaluate(async (key) => {
    const raw = Uint8Array.from(atob(key.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', raw));
    return Array.from(hash.slice(0, 10), (b) => b.toString(16).padStart(2, '0')).join('').match(/.{4}/g).join(' ');
  }, bobKey);
  assert.equal(digest, bobFingerprint, 'the stored key is Bob’s identity key');

  // Alice reloads: same browser, new session in the room; Bob is still verified.
  await alice.page.reload();
  await alice.page.getByLabel('Your name').fill('Alice');
  await alice.page.getByRole('button', { name: 'Join the room' }).click();
  await waitForMembers(alice.page, 3);
  await listed(alice.page, 'Bob').locator('.mark.verified').waitFor();
  await say(bob.page, 'Still me');
  assert.deepEqual(await marks(await waitForMessage(alice.page, 'Bob', 'Still me')), ['Verified']);
  // Another browser of Alice's would not know: nothing was sent anywhere.
  const elsewhere = await newPerson(env.browser);
  await enterRoom(elsewhere, link, 'Alice elsewhere');
  await waitForMembers(elsewhere.page, 4);
  assert.deepEqual(await marks(listed(elsewhere.page, 'Bob')), []);

  // Carol (never verified) comes back in a new tab: a new key, a plain warning.
  await leaveRoom(carol);
  await waitForAlert(alice.page, 'Carol left the chat');
  const carolAgain = await newPerson(env.browser);
  await enterRoom(carolAgain, link, 'Carol');
  const carolWarning = await waitForAlert(alice.page, 'Carol is back with a different key');
  assert.match(carolWarning, /It may be the same person in a new tab, or someone else using the name: compare fingerprints to be sure\./);
  assert.deepEqual(await marks(listed(alice.page, 'Carol')), ['New key']);

  // Bob (verified) leaves and "Bob" comes back with another key: a loud warning, no Verified mark.
  await leaveRoom(bob);
  await waitForAlert(alice.page, 'Bob left the chat');
  const impostor = await newPerson(env.browser);
  await enterRoom(impostor, link, 'Bob');
  const loud = await waitForAlert(alice.page, 'Warning: Bob was verified');
  assert.match(loud, /but is back with a different key .*This is not the person you verified unless you compare fingerprints again\./);
  const loudAlert = alice.page.locator('li.alert.trust-alert.loud');
  assert.equal(await loudAlert.count(), 1);
  assert.equal(await loudAlert.evaluate((el) => getComputedStyle(el).fontWeight), '600', 'it stands out');
  assert.deepEqual(await marks(listed(alice.page, 'Bob')), ['New key']);
  await say(impostor.page, 'Hi, Bob here, new laptop');
  assert.deepEqual(await marks(await waitForMessage(alice.page, 'Bob', 'Hi, Bob here, new laptop')), ['New key']);
  // The verified Bob's messages keep their mark.
  assert.deepEqual(await marks(alice.page.locator('li.msg').filter({ hasText: 'Still me' })), ['Verified']);
  // The elsewhere browser had verified nobody: a plain warning there.
  await waitForAlert(elsewhere.page, 'Bob is back with a different key');

  for (const person of [alice, carolAgain, impostor, elsewhere]) assertNoErrors(person, 'person');
  for (const person of [alice, bob, carol, carolAgain, impostor, elsewhere]) await person.context.close();
});

test('Share shows the link, a warning and a QR code that a reader decodes to the same link; Copy invite stays', async () => {
  const alice = await newPerson(env.browser);
  await alice.context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const requests = [];
  alice.page.on('request', (request) => requests.push(request.url()));
  await enterRoom(alice, env.server.url, 'Alice');
  const { page } = alice;
  const link = page.url();
  assert.ok(await page.getByRole('button', { name: 'Copy invite link' }).isVisible(), 'Copy invite stays');
  assert.equal(await page.getByRole('button', { name: 'Share invite link' }).getAttribute('title'), 'Share the invite link, with a QR code');

  await page.getByRole('button', { name: 'Share' }).click();
  const dialog = page.getByRole('dialog', { name: 'Invite people' });
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /Anyone with this link can join the room and read everything written while they are in it\./);
  assert.equal(await dialog.getByLabel('Invite link', { exact: true }).inputValue(), link);
  await dialog.getByRole('button', { name: 'Copy link' }).click();
  await dialog.getByRole('status').filter({ hasText: 'Copied.' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);

  const qr = dialog.getByRole('img', { name: 'QR code of the invite link' });
  await qr.scrollIntoViewIfNeeded();
  const shot = path.join(env.work, 'qr.png');
  await writeFile(shot, await qr.screenshot());
  const { stdout } = await promisify(execFile)('zbarimg', ['--quiet', '--raw', '-Sdisable', '-Sqrcode.enable', shot]);
  assert.equal(stdout.trim(), link, 'the QR code holds exactly the invite link');
  // Made in the page: nothing but this server was asked for anything.
  const origin = new URL(env.server.url).origin;
  assert.deepEqual(requests.filter((url) => !url.startsWith(origin) && !url.startsWith('blob:') && !url.startsWith('data:')), []);

  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assertNoErrors(alice, 'Alice');
  await alice.context.close();
});

test('on a phone in dark mode the header keeps one row with Share standing in for Copy invite, and the Share dialog fits', async () => {
  const alice = await newPerson(env.browser, { viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
  await enterRoom(alice, env.server.url, 'Alice');
  const { page } = alice;
  const header = await page.locator('header.topbar').evaluate((el) => ({ scroll: el.scrollWidth, width: el.clientWidth }));
  assert.ok(header.scroll <= header.width, `the header fits 360 px (${header.scroll} > ${header.width})`);
  // On a phone the Share button stands in for "Copy invite link", as a word rather than an icon.
  const share = page.getByRole('button', { name: 'Share invite link' });
  assert.equal(await share.innerText(), 'Invite');
  assert.equal(await page.getByRole('button', { name: 'Copy invite link' }).isVisible(), false);
  await share.click();
  const dialog = page.getByRole('dialog', { name: 'Invite people' });
  await dialog.waitFor();
  const box = await dialog.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 360, 'the dialog is within the screen');
  const qrBox = await dialog.getByRole('img', { name: 'QR code of the invite link' }).boundingBox();
  assert.ok(qrBox.width >= 200 && qrBox.x + qrBox.width <= 360, `the code is large enough to scan and on screen (${qrBox.width} px)`);
  // Dark on white in the dark theme too: the first pixel of the quiet zone is white.
  const corner = await dialog.locator('canvas.qr-code').evaluate((canvas) => Array.from(canvas.getContext('2d').getImageData(0, 0, 1, 1).data));
  assert.deepEqual(corner, [255, 255, 255, 255]);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0);
  await page.keyboard.press('Escape');
  assertNoErrors(alice, 'Alice');
  await alice.context.close();
});

test('Leave asks first: Escape and Stay keep you in the room, confirming leaves', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  const { page } = bob;

  await page.getByRole('button', { name: 'Leave' }).click();
  const dialog = page.getByRole('dialog', { name: 'Leave the room?' });
  await dialog.waitFor();
  assert.match(await dialog.textContent(), /Nothing of the conversation is kept/);
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Stay', 'the safe choice has the focus');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });

  await page.getByRole('button', { name: 'Leave' }).click();
  await dialog.waitFor();
  await page.keyboard.press('Enter'); // on Stay
  await dialog.waitFor({ state: 'detached' });
  await say(page, 'still here');
  await waitForMessage(alice.page, 'Bob', 'still here');
  assert.equal((await waitForMembers(alice.page, 2)).length, 2);
  assert.equal(await alice.page.locator('li.alert', { hasText: 'Bob left' }).count(), 0);

  // With the keyboard only: Tab to "Leave the room", Enter.
  await page.getByRole('button', { name: 'Leave' }).click();
  await dialog.waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Leave the room');
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: 'You left the room' }).waitFor();
  await waitForAlert(alice.page, 'Bob left the chat');
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});

test('the name is remembered only when asked, fills the form next time, and can be forgotten', async () => {
  const person = await newPerson(env.browser);
  const { page } = person;
  await page.goto(env.server.url);
  const remember = page.getByLabel('Remember my name in this browser');
  assert.equal(await remember.isChecked(), false, 'off by default');
  await enterRoom(person, env.server.url, 'Zoë');
  assert.deepEqual(await page.evaluate(() => ({ ...localStorage })), {}, 'nothing stored without the box ticked');

  await page.goto(env.server.url);
  await page.getByLabel('Your name').fill('Zoë');
  await remember.check();
  await page.getByRole('button', { name: 'Create a room' }).click();
  await page.locator('.conn-status[data-tone=ok]').waitFor();
  assert.deepEqual(await page.evaluate(() => ({ ...localStorage })), { 'streamchat.name': 'Zoë' });

  // Next visit (an invite link this time): the form is filled in.
  const other = await newPerson(env.browser);
  await enterRoom(other, env.server.url, 'Host');
  await page.goto(other.page.url());
  assert.equal(await page.getByLabel('Your name').inputValue(), 'Zoë');
  assert.equal(await remember.isChecked(), true);
  // Forget it: gone from the form and from the browser.
  await page.getByRole('button', { name: 'Forget it' }).click();
  assert.equal(await page.getByLabel('Your name').inputValue(), '');
  assert.equal(await remember.isChecked(), false);
  await page.getByRole('status').filter({ hasText: 'no longer remembered' }).waitFor();
  assert.deepEqual(await page.evaluate(() => ({ ...localStorage })), {});
  await page.reload();
  assert.equal(await page.getByLabel('Your name').inputValue(), '');

  // Unticking the box on a later visit forgets it too.
  await page.getByLabel('Your name').fill('Zoë');
  await remember.check();
  await page.getByRole('button', { name: 'Join the room' }).click();
  await page.locator('.conn-status[data-tone=ok]').waitFor();
  await page.goto(env.server.url);
  await remember.uncheck();
  await page.getByRole('button', { name: 'Create a room' }).click();
  await page.locator('.conn-status[data-tone=ok]').waitFor();
  assert.deepEqual(await page.evaluate(() => ({ ...localStorage })), {});
  assertNoErrors(person, 'person');
  await person.context.close();
  await other.context.close();
});

test('desktop notifications show the name only by default, the text or nothing by choice, remembered per browser', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await bob.context.grantPermissions(['notifications']);
  // What the page asks the system to show, recorded; the tab is in the background.
  await bob.context.addInitScript(() => {
    window.__shown = [];
    window.Notification = class extends EventTarget {
      static permission = 'granted';
      static requestPermission() { return Promise.resolve('granted'); }
      constructor(title, options) { super(); window.__shown.push({ title, body: options?.body ?? '' }); }
      close() {}
    };
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
  });
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  const settings = bob.page.getByRole('group', { name: 'Notifications show' });
  assert.equal(await settings.getByLabel('Name only').isChecked(), true, 'name only by default');

  const shown = async (text) => {
    await say(alice.page, text);
    await waitForMessage(bob.page, 'Alice', text);
    return bob.page.evaluate(() => window.__shown.at(-1));
  };
  assert.deepEqual(await shown('the door code is 4711'), { title: 'Alice — StreamChat', body: 'New message' });
  await settings.getByLabel('Name and message').check();
  await settings.getByRole('status').filter({ hasText: 'Saved in this browser.' }).waitFor();
  assert.deepEqual(await shown('see you at nine'), { title: 'Alice — StreamChat', body: 'see you at nine' });
  await settings.getByLabel('Nothing').check();
  assert.deepEqual(await shown('a secret plan'), { title: 'StreamChat', body: 'New message' });
  // Remembered in this browser: a new page starts with the choice made.
  await bob.page.reload();
  await bob.page.getByLabel('Your name').fill('Bob');
  await bob.page.getByRole('button', { name: 'Join the room' }).click();
  assert.equal(await bob.page.getByRole('group', { name: 'Notifications show' }).getByLabel('Nothing').isChecked(), true);
  assert.deepEqual(await bob.page.evaluate(() => ({ ...localStorage })), { 'streamchat.notifications': 'nothing' });
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});

test('an invite link to an empty room says "Nobody is here: check the link"; the creator of a room never sees it', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  assert.equal(await alice.page.locator('.nobody-here').count(), 0, 'not for the creator');
  const link = alice.page.url();

  // A mistyped link: one character of the key changed.
  const fragment = new URL(link).hash.slice(1);
  const typo = `${env.server.url}/#${fragment.slice(0, 10)}${fragment[10] === 'A' ? 'B' : 'A'}${fragment.slice(11)}`;
  const bob = await newPerson(env.browser, { viewport: { width: 360, height: 740 }, colorScheme: 'dark' });
  await enterRoom(bob, typo, 'Bob');
  const note = bob.page.locator('.nobody-here');
  await note.waitFor();
  assert.match(await note.textContent(), /^Nobody is here: check the link\.You opened an invite link, but nobody else is in this room\. The link may be mistyped or cut short, or everyone may have left/);
  assert.match(await note.textContent(), /you can stay/);
  // Read out: it is in the conversation log.
  assert.match(await bob.page.getByRole('log', { name: 'Messages' }).ariaSnapshot(), /Nobody is here: check the link/);
  assert.equal(await alice.page.locator('li.alert', { hasText: 'Bob joined' }).count(), 0, 'Bob is not in Alice’s room');

  // Staying works: when someone opens the same link, the note goes.
  const carol = await newPerson(env.browser);
  await enterRoom(carol, typo, 'Carol');
  await note.waitFor({ state: 'detached' });
  await waitForMembers(bob.page, 2);
  assert.equal(await carol.page.locator('.nobody-here').count(), 0, 'Carol found Bob there');

  // The right link, with people in the room: no note.
  const dave = await newPerson(env.browser);
  await enterRoom(dave, link, 'Dave');
  await waitForMembers(dave.page, 2);
  assert.equal(await dave.page.locator('.nobody-here').count(), 0);
  for (const person of [alice, bob, carol, dave]) {
    assertNoErrors(person, 'person');
    await person.context.close();
  }
});
