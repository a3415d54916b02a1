// v2 rooms with both clients (docs/crypto.md §17): the Rust terminal client
// (`streamchat chat --json`, crates/client/src/session/lobby.rs) and the web client
// (web/src/lobby.ts, real Chromium) in one MLS group. In a knock room made by the Rust
// client, the browser knocks and the Rust client lets it in; in an open room made in the
// browser, the browser (the designated member) lets the Rust client in by itself. Text
// goes both ways under MLS, and a leave changes the keys for the one who stays.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, startBot, stopBots } from '../cli/cli-harness.mjs';
import {
  assertNoErrors, enterRoom, memberList, newPerson, say, serverAndBrowser, waitConnected, waitForAlert, waitForMessage,
} from './browser-harness.mjs';

const env = serverAndBrowser();
after(stopBots);

async function ownFingerprint(page) {
  return (await memberList(page)).find((member) => member.self).fingerprint;
}

test('a knock room made by the Rust client: the browser knocks, Rust lets it in, both read each other', async () => {
  const { code, stdout } = await runCli(['room', 'new', '--server', env.server.url, '--kind', 'knock']);
  assert.equal(code, 0);
  const link = stdout.trim();
  assert.match(new URL(link).hash, /^#2\.[A-Za-z0-9_-]{43}$/);
  const rusty = startBot(link, 'Rusty');
  await rusty.next('ready');
  await rusty.next('let_in');

  const web = await newPerson(env.browser);
  await enterRoom(web, link, 'Webby');
  await web.page.locator('.lobby-wait', { hasText: 'someone here must let you in' }).waitFor();
  const knock = await rusty.next('knock');
  assert.equal(knock.member.name, 'Webby');
  assert.equal(knock.member.fingerprint, await ownFingerprint(web.page), 'Rusty sees the fingerprint the browser shows for itself');
  rusty.send('/letin Webby');
  await waitForAlert(web.page, 'Rusty let you in');
  const changed = await rusty.next('keys_changed');
  assert.equal(changed.epoch, 1);

  await say(web.page, 'hello from the browser, under MLS');
  const fromWeb = await rusty.next('message');
  assert.equal(fromWeb.text, 'hello from the browser, under MLS');
  assert.equal(fromWeb.from.name, 'Webby');
  rusty.send('hello from Rust, under MLS');
  await waitForMessage(web.page, 'Rusty', 'hello from Rust, under MLS');
  assert.match(await web.page.locator('.key-epoch').textContent(), /^Key epoch 1\b/);

  rusty.send('/quit');
  await rusty.exited;
  // The browser, now alone and designated, removes Rusty's leaf.
  await waitForAlert(web.page, 'Keys changed: Rusty left');
  await web.page.locator('.key-epoch', { hasText: 'Key epoch 2' }).waitFor();
  assertNoErrors(web, 'Webby');
  await web.context.close();
});

test('an open room made in the browser lets the Rust client in by itself; then a third, Rust, is let in too', async () => {
  const web = await newPerson(env.browser);
  await web.page.goto(env.server.url);
  await web.page.getByLabel('Your name').fill('Webby');
  await web.page.getByLabel('Anyone with the link, new keys on every join and leave').check();
  await web.page.locator('form.name-form button[type=submit]').click();
  await waitConnected(web.page);
  const link = web.page.url();
  assert.match(new URL(link).hash, /^#2o\.[A-Za-z0-9_-]{43}$/);

  const rusty = startBot(link, 'Rusty');
  await rusty.next('ready');
  await rusty.next('let_in', 20_000);
  await waitForAlert(web.page, 'You let Rusty in');
  rusty.send('Rust in an open room');
  await waitForMessage(web.page, 'Rusty', 'Rust in an open room');
  await say(web.page, 'the browser answers');
  assert.equal((await rusty.next('message')).text, 'the browser answers');

  const ferris = startBot(link, 'Ferris');
  await ferris.next('let_in', 20_000);
  await waitForAlert(web.page, 'You let Ferris in');
  ferris.send('Ferris says hi');
  await waitForMessage(web.page, 'Ferris', 'Ferris says hi');
  assert.equal((await rusty.next((e) => e.event === 'message' && e.text === 'Ferris says hi')).from.name, 'Ferris');
  await say(web.page, 'all three of us');
  assert.equal((await ferris.next('message')).text, 'all three of us');
  assert.equal((await rusty.next((e) => e.event === 'message' && e.text === 'all three of us')).from.name, 'Webby');
  for (const bot of [rusty, ferris]) {
    bot.send('/quit');
    await bot.exited;
  }
  assertNoErrors(web, 'Webby');
  await web.context.close();
});
