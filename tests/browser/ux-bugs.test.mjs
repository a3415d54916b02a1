// The "Bugs" of issue #18, each as a person meets it: a paste over the limit, Hebrew and
// Arabic text and names, the phone layout (dialog, drawer) and the header at 800 px, a
// message that can never fit, and what a screen reader hears beside each message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../harness.mjs';
import {
  assertNoErrors, enterRoom, newPerson, say, waitForAlert, waitForMembers, waitForMessage,
  serverAndBrowser,
} from './browser-harness.mjs';

const env = serverAndBrowser();

const MESSAGE = () => ({ exact: true });
const composer = (page) => page.getByLabel('Message', MESSAGE());

test('a pasted text over 16,000 characters is never cut: it stays in the composer, refused with the limit and its length', async () => {
  const alice = await newPerson(env.browser);
  await alice.context.grantPermissions(['clipboard-read', 'clipboard-write']);
  await enterRoom(alice, env.server.url, 'Alice');
  const { page } = alice;
  const long = `${'0123456789'.repeat(2_000)}END`; // 20,003 characters
  await page.evaluate((text) => navigator.clipboard.writeText(text), long);
  await composer(page).focus();
  await page.keyboard.press('Control+V');
  assert.equal((await composer(page).inputValue()).length, long.length, 'the paste is whole in the composer');

  await composer(page).press('Enter');
  const error = page.getByRole('alert').filter({ hasText: 'limit' });
  await error.waitFor();
  const said = await error.textContent();
  assert.match(said, /20,003 characters/, 'it gives the length');
  assert.match(said, /16,000/, 'it gives the limit');
  assert.equal(await composer(page).inputValue(), long, 'nothing is lost: the composer keeps the whole text');
  assert.equal(await page.locator('li.msg').count(), 0, 'nothing was sent, cut or not');
  assert.equal(await composer(page).getAttribute('aria-invalid'), '');

  // Shortened under the limit, the note goes and the text is sent whole.
  const fits = long.slice(0, 16_000);
  await composer(page).fill(fits);
  await error.waitFor({ state: 'hidden' });
  await composer(page).press('Enter');
  const sent = await waitForMessage(page, 'Alice', fits);
  await sent.locator('.status').waitFor({ state: 'detached' });
  assert.equal(await composer(page).inputValue(), '');
  assertNoErrors(alice, 'Alice');
  await alice.context.close();
});

test('Hebrew and Arabic messages and names are laid out right to left, names isolated from the text around them', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const sara = await newPerson(env.browser);
  const hebrewName = 'שרה';
  await enterRoom(sara, alice.page.url(), hebrewName);
  await waitForMembers(alice.page, 2);

  // "X joined the chat at …": the name is a <bdi>, so the sentence keeps its order.
  await waitForAlert(alice.page, `${hebrewName} joined the chat`);
  const joined = alice.page.locator('li.alert').filter({ hasText: `${hebrewName} joined the chat` }).first();
  const joinedName = joined.locator('bdi');
  assert.equal(await joinedName.textContent(), hebrewName);
  assert.equal(await joinedName.evaluate((el) => getComputedStyle(el).unicodeBidi), 'isolate');
  assert.equal(await joinedName.evaluate((el) => getComputedStyle(el).direction), 'rtl');

  // The typing line isolates the name too.
  await composer(sara.page).pressSequentially('שלו');
  const typing = alice.page.locator('.typing bdi', { hasText: hebrewName });
  await typing.waitFor();
  assert.equal(await typing.evaluate((el) => getComputedStyle(el).unicodeBidi), 'isolate');

  const hebrew = 'שלום עולם, מה שלומך?';
  const arabic = 'مرحبا بالعالم';
  await say(sara.page, hebrew);
  await say(sara.page, arabic);
  await say(alice.page, 'Hello in English');
  for (const text of [hebrew, arabic]) {
    const message = await waitForMessage(alice.page, hebrewName, text);
    const body = message.locator('.text');
    assert.equal(await body.getAttribute('dir'), 'auto');
    assert.equal(await body.evaluate((el) => getComputedStyle(el).direction), 'rtl', `${text} is laid out right to left`);
    const author = message.locator('.author bdi');
    assert.equal(await author.textContent(), hebrewName);
    assert.equal(await author.evaluate((el) => getComputedStyle(el).direction), 'rtl');
    assert.equal(await author.evaluate((el) => getComputedStyle(el).unicodeBidi), 'isolate');
  }
  const english = await waitForMessage(alice.page, 'Alice', 'Hello in English');
  assert.equal(await english.locator('.text').evaluate((el) => getComputedStyle(el).direction), 'ltr');
  // In the online list too.
  const listed = alice.page.locator('.member-list .member-name bdi', { hasText: hebrewName });
  assert.equal(await listed.evaluate((el) => getComputedStyle(el).direction), 'rtl');

  assertNoErrors(alice, 'Alice');
  assertNoErrors(sara, 'Sara');
  await alice.context.close();
  await sara.context.close();
});
