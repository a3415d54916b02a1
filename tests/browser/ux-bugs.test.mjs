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
