// Hostile text stays text: names and messages that are HTML render literally and run
// nothing. And the client refuses to run where WebCrypto is unavailable (no secure
// context), explaining why instead of falling back to anything unencrypted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertNoErrors, enterRoom, newPerson, say, waitForAlert, waitForMembers, waitForMessage,
  serverAndBrowser,
} from './browser-harness.mjs';

const PAYLOAD = '<img src=x onerror=window.__pwned=1>';
const MORE_PAYLOADS = [
  '<script>window.__pwned=2</script>',
  '"><svg onload=window.__pwned=3>',
  '<a href="javascript:window.__pwned=4">click</a>',
];

const env = serverAndBrowser({ browserArgs: ['--host-resolver-rules=MAP insecure.streamchat.test 127.0.0.1'] });

test('a name and messages made of HTML render as literal text and execute nothing', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const mallory = await newPerson(env.browser);
  await enterRoom(mallory, alice.page.url(), PAYLOAD);

  const members = await waitForMembers(alice.page, 2);
  assert.ok(members.some((member) => member.name === PAYLOAD), 'the name is shown literally in the online list');
  assert.match(await waitForAlert(alice.page, 'onerror'), /^<img src=x onerror=window\.__pwned=1> joined the chat/);

  await say(mallory.page, PAYLOAD);
  await waitForMessage(alice.page, PAYLOAD, PAYLOAD);
  for (const text of MORE_PAYLOADS) {
    await say(mallory.page, text);
    await waitForMessage(alice.page, PAYLOAD, text);
  }
  // Let any injected handler (an <img> error, an <svg> load) have its chance to run.
  await alice.page.waitForTimeout(500);

  for (const person of [alice, mallory]) {
    const state = await person.page.evaluate(() => ({
      pwned: Reflect.get(window, '__pwned') ?? null,
      injected: document.querySelectorAll('#app img, #app svg, #app script, #app [onerror], #app [onload]').length,
      javascriptLinks: Array.from(document.querySelectorAll('#app a')).filter((a) => a.getAttribute('href')?.startsWith('javascript:')).length,
    }));
    assert.deepEqual(state, { pwned: null, injected: 0, javascriptLinks: 0 });
  }
  await mallory.page.getByRole('button', { name: 'Leave' }).click();
  await mallory.page.getByRole('dialog').getByRole('button', { name: 'Leave the room' }).click();
  assert.match(await waitForAlert(alice.page, 'left the chat'), /^<img src=x onerror=window\.__pwned=1> left the chat/);
  assertNoErrors(alice, 'Alice');
  assertNoErrors(mallory, 'Mallory');
  await alice.context.close();
  await mallory.context.close();
});

test('an insecure origin gets an explanation, not a chat', async () => {
  const person = await newPerson(env.browser);
  const insecure = env.server.url.replace('127.0.0.1', 'insecure.streamchat.test');
  await person.page.goto(`${insecure}/#AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8`);
  assert.equal(await person.page.evaluate(() => window.isSecureContext), false);
  await person.page.getByRole('heading', { name: 'This page needs a secure connection' }).waitFor();
  assert.match(await person.page.locator('#app').textContent(), /HTTPS/);
  assert.equal(await person.page.locator('form, textarea').count(), 0, 'nothing to type into');
  await person.context.close();
});

test('a damaged invite link says so and offers a new room', async () => {
  const person = await newPerson(env.browser);
  await person.page.goto(`${env.server.url}/#not-a-secret`);
  await person.page.getByText('This invite link is incomplete or damaged').waitFor();
  assert.equal(await person.page.locator('form.name-form button[type=submit]').textContent(), 'Create a room');
  assertNoErrors(person, 'person');
  await person.context.close();
});
