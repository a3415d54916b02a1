// v2 rooms (docs/crypto.md §17) in real Chromium against the release binary: a room
// where newcomers knock and someone lets them in, a leaver whose keys are changed away,
// and an open room that lets people in by itself. Every byte between the browsers and
// the server passes through a recording proxy: no text and no name crosses it in any
// common encoding.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { recordingProxy, startServer } from '../harness.mjs';
import {
  V1_ROOM, assertNoErrors, attach, download, encodings, enterRoom, fileCard, memberList, newPerson, say, serverAndBrowser,
  waitConnected, waitForAlert, waitForMembers, waitForMessage,
} from './browser-harness.mjs';

const env = serverAndBrowser();
let tap;
const tag = randomBytes(4).toString('hex');
/** Everything said and every name, to look for in the captured bytes. */
const secrets = new Set();
/** File contents sent in a v2 room, to look for too. */
const files = [];

after(async () => {
  await tap?.close();
});

/** The server's address through the recording proxy (started with the first room). */
async function url() {
  tap ??= await recordingProxy(env.server.port);
  return `http://127.0.0.1:${tap.port}/`;
}

function words(text) {
  secrets.add(text);
  return text;
}

/** Creates a room from the landing page, choosing its kind by its label. */
async function createRoom(person, name, kindLabel) {
  const { page } = person;
  await page.goto(await url());
  await page.getByLabel('Your name').fill(name);
  if (kindLabel !== undefined) await page.getByLabel(kindLabel).check();
  await page.locator('form.name-form button[type=submit]').click();
  await waitConnected(page);
}

/** Opens an invite link and joins (a v2 room: in the room, not yet let in). */
async function join(person, link, name) {
  await enterRoom(person, link, name);
}

async function ownFingerprint(page) {
  const me = (await memberList(page)).find((member) => member.self);
  return me.fingerprint;
}

async function keyEpoch(page) {
  return page.locator('.key-epoch').textContent();
}

test('knock room: Bob waits, reads nothing, is let in by Alice; then a leaver is keyed out', async () => {
  const ALICE = words(`Alice ${tag}`);
  const BOB = words(`Bob ${tag}`);
  const CAROL = words(`Carol ${tag}`);
  const alice = await newPerson(env.browser);
  await createRoom(alice, ALICE, 'Ask before letting people in');
  const link = alice.page.url();
  assert.match(new URL(link).hash, /^#2\.[A-Za-z0-9_-]{43}$/, 'a knock room’s link starts with 2.');
  // Share shows the same link, prefix included.
  await alice.page.getByRole('button', { name: 'Share invite link' }).click();
  assert.equal(await alice.page.locator('#share-link').inputValue(), link);
  await alice.page.locator('dialog[open]').getByRole('button', { name: 'Close' }).click();
  assert.match(await keyEpoch(alice.page), /^Key epoch 0\b/);

  const early = words(`before Bob came ${tag}`);
  await say(alice.page, early);
  await waitForMessage(alice.page, ALICE, early);

  const bob = await newPerson(env.browser);
  await join(bob, link, BOB);
  await bob.page.locator('.lobby-wait', { hasText: 'Waiting to be let in… someone here must let you in.' }).waitFor();
  await waitForMembers(bob.page, 2);
  // What Bob types while he waits stays with him, saying why.
  const waiting = words(`typed while waiting ${tag}`);
  await say(bob.page, waiting);
  const pending = await waitForMessage(bob.page, BOB, waiting);
  await pending.locator('.status', { hasText: 'Waiting to be let in' }).waitFor();
  // Nor does typing show: no typing notice goes out before Bob is in.
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('abc');

  // Alice sees Bob knock, with the fingerprint Bob sees for himself.
  const knock = alice.page.locator('.knock', { hasText: BOB });
  await knock.waitFor();
  // Alice speaks while Bob waits: it reaches his browser (the server relays it) but not his eyes.
  const whileWaiting = words(`said while Bob waits ${tag}`);
  await say(alice.page, whileWaiting);
  await waitForMessage(alice.page, ALICE, whileWaiting);
  const bobFingerprint = await ownFingerprint(bob.page);
  assert.equal(await knock.locator('.fingerprint').textContent(), bobFingerprint);
  assert.equal(await alice.page.locator('.msg .text', { hasText: waiting }).count(), 0, 'nothing of Bob’s reaches Alice before he is in');
  assert.equal(await alice.page.locator('.typing').textContent(), '');
  // The online list says who is not let in yet.
  await alice.page.locator('.member-list .member', { hasText: BOB }).locator('.outside', { hasText: 'not let in yet' }).waitFor();
  await bob.page.getByLabel('Message', { exact: true }).fill('');

  // Let in, from the keyboard.
  await knock.getByRole('button', { name: `Let ${BOB} in` }).focus();
  await alice.page.keyboard.press('Enter');
  await waitForAlert(alice.page, `You let ${BOB} in`);
  await waitForAlert(bob.page, `${ALICE} let you in`);
  await bob.page.locator('.lobby-wait').waitFor({ state: 'detached' });
  await knock.waitFor({ state: 'detached' });
  await alice.page.locator('.member-list .outside').waitFor({ state: 'detached' });

  // The waiting message goes out by itself; both ways work; what came before stays unread.
  await waitForMessage(alice.page, BOB, waiting);
  const hello = words(`hello Bob, you are in ${tag}`);
  await say(alice.page, hello);
  await waitForMessage(bob.page, ALICE, hello);
  const reply = words(`thanks Alice ${tag}`);
  await say(bob.page, reply);
  await waitForMessage(alice.page, BOB, reply);
  assert.equal(await bob.page.locator('.msg .text', { hasText: early }).count(), 0, 'Bob cannot read what was said before he was let in');
  assert.equal(await bob.page.locator('.msg .text', { hasText: whileWaiting }).count(), 0, 'nor what was said while he waited');
  assert.equal(await bob.page.locator('li.alert.warning').count(), 0, 'and no warning for it: it was never his to read');
  // Typing and files go under MLS too.
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('typing');
  await alice.page.locator('.typing', { hasText: `${BOB} is typing…` }).waitFor();
  await bob.page.getByLabel('Message', { exact: true }).fill('');
  const fileBytes = randomBytes(100_000);
  files.push(fileBytes);
  const fileName = words(`plan-${tag}.bin`);
  await attach(bob.page, fileName, 'application/octet-stream', fileBytes);
  const card = fileCard(alice.page, fileName);
  await card.getByRole('link', { name: 'Save' }).waitFor({ timeout: 30_000 });
  assert.deepEqual(await download(alice.page, card), fileBytes);
  assert.match(await keyEpoch(alice.page), /^Key epoch 1\b/);
  assert.match(await keyEpoch(bob.page), /^Key epoch 1\b/);

  // Carol knocks; Bob lets her in this time.
  const carol = await newPerson(env.browser);
  await join(carol, link, CAROL);
  const carolKnock = bob.page.locator('.knock', { hasText: CAROL });
  await carolKnock.waitFor();
  assert.equal(await carolKnock.locator('.fingerprint').textContent(), await ownFingerprint(carol.page));
  await carolKnock.getByRole('button', { name: `Let ${CAROL} in` }).click();
  await waitForAlert(alice.page, `${BOB} let ${CAROL} in`);
  await carol.page.locator('.lobby-wait').waitFor({ state: 'detached' });
  const forCarol = words(`welcome Carol ${tag}`);
  await say(alice.page, forCarol);
  await waitForMessage(carol.page, ALICE, forCarol);

  // Carol leaves: the keys change, Alice and Bob keep talking.
  await carol.page.getByRole('button', { name: 'Leave' }).click();
  await carol.page.getByRole('dialog').getByRole('button', { name: 'Leave the room' }).click();
  await carol.page.getByRole('heading', { name: 'You left the room' }).waitFor();
  await waitForAlert(alice.page, `Keys changed: ${CAROL} left`);
  await waitForAlert(bob.page, `Keys changed: ${CAROL} left`);
  await alice.page.locator('.key-epoch', { hasText: 'Key epoch 3' }).waitFor();
  await bob.page.locator('.key-epoch', { hasText: 'Key epoch 3' }).waitFor();
  const after = words(`after Carol left ${tag}`);
  await say(bob.page, after);
  await waitForMessage(alice.page, BOB, after);
  const again = words(`still just us ${tag}`);
  await say(alice.page, again);
  await waitForMessage(bob.page, ALICE, again);

  for (const person of [alice, bob, carol]) assertNoErrors(person, 'knock room');
  await Promise.all([alice, bob, carol].map((p) => p.context.close()));
});

test('open room: Bob is let in without anybody clicking', async () => {
  const ALICE = words(`Alys ${tag}`);
  const BOB = words(`Bobby ${tag}`);
  const alice = await newPerson(env.browser);
  await createRoom(alice, ALICE, 'Anyone with the link, new keys on every join and leave');
  const link = alice.page.url();
  assert.match(new URL(link).hash, /^#2o\.[A-Za-z0-9_-]{43}$/, 'an open v2 room’s link starts with 2o.');
  const bob = await newPerson(env.browser);
  await join(bob, link, BOB);
  await waitForAlert(bob.page, `${ALICE} let you in`);
  await waitForAlert(alice.page, `You let ${BOB} in`);
  assert.equal(await alice.page.locator('.knock').count(), 0, 'an open room shows no knocks to let in');
  const text = words(`open room hello ${tag}`);
  await say(bob.page, text);
  await waitForMessage(alice.page, BOB, text);
  const answer = words(`open room answer ${tag}`);
  await say(alice.page, answer);
  await waitForMessage(bob.page, ALICE, answer);
  for (const person of [alice, bob]) assertNoErrors(person, 'open room');
  await Promise.all([alice, bob].map((p) => p.context.close()));
});

test('open room after a server restart: whoever comes back second is let in again by itself, and what it typed offline arrives', async () => {
  const ALICE = words(`Ayla ${tag}`);
  const BOB = words(`Bram ${tag}`);
  const alice = await newPerson(env.browser);
  await createRoom(alice, ALICE, 'Anyone with the link, new keys on every join and leave');
  const bob = await newPerson(env.browser);
  await join(bob, alice.page.url(), BOB);
  await waitForAlert(bob.page, `${ALICE} let you in`);

  const { port } = env.server;
  await env.server.stop();
  for (const person of [alice, bob]) await person.page.locator('.conn-status[data-tone=bad]').waitFor();
  const offline = words(`typed while the server was away ${tag}`);
  await say(bob.page, offline);
  // Bob's network stays down until Alice is back: she makes the new group, he knocks on it.
  await bob.context.setOffline(true);
  env.server = await startServer([], { port });
  await waitConnected(alice.page, 30_000);
  await alice.page.locator('.key-epoch', { hasText: 'Key epoch 0' }).waitFor();
  await bob.context.setOffline(false);
  await waitConnected(bob.page, 30_000);
  await waitForAlert(bob.page, 'You missed a key change: asking to be let in again', 30_000);
  await waitForAlert(bob.page, `${ALICE} let you in`);
  await waitForMessage(alice.page, BOB, offline, 30_000);
  const text = words(`after the restart ${tag}`);
  await say(alice.page, text);
  await waitForMessage(bob.page, ALICE, text);
  for (const person of [alice, bob]) {
    await person.page.locator('.key-epoch', { hasText: 'Key epoch 1' }).waitFor();
    person.errors = person.errors.filter((error) => !/WebSocket connection to .* failed|ERR_INTERNET_DISCONNECTED/.test(error));
    assertNoErrors(person, 'open room after a restart');
  }
  await Promise.all([alice, bob].map((p) => p.context.close()));
});

test('a new room asks before letting people in unless its maker chooses otherwise', async () => {
  const alice = await newPerson(env.browser);
  await createRoom(alice, 'Alice');
  assert.match(new URL(alice.page.url()).hash, /^#2\.[A-Za-z0-9_-]{43}$/);
  await alice.page.locator('.key-epoch').waitFor();
  await alice.context.close();
  const bob = await newPerson(env.browser);
  await createRoom(bob, 'Bob', V1_ROOM);
  assert.match(new URL(bob.page.url()).hash, /^#[A-Za-z0-9_-]{43}$/);
  assert.equal(await bob.page.locator('.key-epoch').isHidden(), true);
  await bob.context.close();
});

test('the server saw no text and no name of the v2 rooms', () => {
  const bytes = tap.bytes();
  assert.ok(bytes.length > 10_000, `captured ${bytes.length} bytes`);
  for (const text of secrets) {
    for (const needle of encodings(text)) {
      assert.equal(bytes.indexOf(needle), -1, `"${text}" reached the server as ${needle.toString().slice(0, 40)}`);
    }
  }
  assert.equal(bytes.indexOf(Buffer.from(tag)), -1, 'the tag in every text and name reached the server');
  assert.equal(files.length, 1);
  for (const file of files) {
    for (let offset = 0; offset + 48 <= file.length; offset += 10_000) {
      const slice = file.subarray(offset, offset + 48);
      assert.equal(bytes.indexOf(slice), -1, `file bytes at ${offset} reached the server in the clear`);
      assert.equal(bytes.indexOf(Buffer.from(slice.toString('base64url'))), -1, `file bytes at ${offset} reached the server as base64url`);
    }
  }
});
