// Interoperability: the Rust terminal client (`streamchat chat --json`, a child process)
// and the web client (real Chromium) in one room. Each verifies the other's profile and
// signatures (a message is only ever shown after its signature checked out), both show the
// same fingerprints for both people, text goes both ways, and files go both ways byte for
// byte (multi-chunk, STREAM-encrypted, SHA-256 checked on arrival).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCli, startBot } from '../cli/cli-harness.mjs';
import {
  AT_TIME_ON_DATE, TIME_AND_DATE, assertNoErrors, enterRoom, newPerson, say, waitForAlert, waitForMembers, waitForMessage, fileCard, download, serverAndBrowser
} from './browser-harness.mjs';

const env = serverAndBrowser({ workDir: 'streamchat-interop-' });

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const shortFingerprint = (fingerprint) => fingerprint.split(' ').slice(0, 2).join(' ');

test('a Rust client and a browser chat and share files, verifying each other', async () => {
  const { code, stdout } = await runCli(['room', 'new', '--server', env.server.url]);
  assert.equal(code, 0);
  const link = stdout.trim();

  // The Rust client is in the room first; the browser opens the same invite link.
  const rusty = startBot(link, 'Rusty');
  const ready = await rusty.next('ready');
  const web = await newPerson(env.browser);
  await enterRoom(web, link, 'Webby');

  // Fingerprints agree on both sides, for both people.
  const seen = await waitForMembers(web.page, 2);
  const byName = (name) => seen.find((member) => member.name === name);
  assert.ok(byName('Webby').self);
  assert.equal(byName('Rusty').fingerprint, ready.me.fingerprint, 'the browser shows the fingerprint Rusty has for itself');
  const joined = await rusty.next('joined');
  assert.equal(joined.member.name, 'Webby');
  assert.equal(joined.member.fingerprint, byName('Webby').fingerprint, 'Rusty sees the fingerprint the browser shows for itself');
  assert.match(joined.text, /^Webby joined the chat at \d{2}:\d{2}:\d{2} on \d{4}-\d{2}-\d{2}$/);

  // Browser → Rust: sealed and signed in WebCrypto, opened and verified in Rust.
  await say(web.page, 'Hello from Chromium, ünïcödé ✓');
  const fromWeb = await rusty.next('message');
  assert.equal(fromWeb.text, 'Hello from Chromium, ünïcödé ✓');
  assert.equal(fromWeb.from.name, 'Webby');
  assert.equal(fromWeb.from.fingerprint, byName('Webby').fingerprint);
  assert.equal(fromWeb.from.member, joined.member.member);

  // Rust → browser: sealed and signed in Rust, opened and verified in WebCrypto.
  rusty.send('Hello from Rust, ünïcödé ✓');
  const fromRust = await waitForMessage(web.page, 'Rusty', 'Hello from Rust, ünïcödé ✓');
  assert.equal(await fromRust.locator('.badge').textContent(), shortFingerprint(ready.me.fingerprint));
  assert.match(await fromRust.locator('time').textContent(), TIME_AND_DATE);
  const sent = await rusty.next('sent');
  assert.equal(
    await fromRust.locator('time').getAttribute('datetime'),
    new Date(sent.ts).toISOString(),
    'the browser shows the server time the Rust client was acked',
  );

  // Browser → Rust: a file of three chunks, saved by the Rust client and compared.
  const webFile = randomBytes(600 * 1024 + 7);
  await web.page.locator('.composer input[type=file]').setInputFiles({ name: 'from-browser.bin', mimeType: 'application/octet-stream', buffer: webFile });
  const offered = await rusty.next('file_offered');
  assert.equal(offered.file.name, 'from-browser.bin');
  assert.equal(offered.file.size, webFile.length);
  assert.equal(offered.file.chunks, 3);
  const received = await rusty.next('file', 30_000);
  assert.equal(received.from.fingerprint, byName('Webby').fingerprint);
  const savedPath = path.join(env.work, 'from-browser.bin');
  rusty.send(`/save ${received.number} ${savedPath}`);
  await rusty.next('saved');
  assert.equal(sha256(readFileSync(savedPath)), sha256(webFile), 'the browser’s file arrives byte for byte in Rust');
  await fileCard(web.page, 'from-browser.bin').locator('.file-status', { hasText: 'Sent' }).waitFor();

  // Rust → browser: a multi-chunk file the browser offers to save, and an image it shows.
  const rustFile = randomBytes(700 * 1024 + 3);
  writeFileSync(path.join(env.work, 'from-rust.bin'), rustFile);
  rusty.send(`/send ${path.join(env.work, 'from-rust.bin')}`);
  const card = fileCard(web.page, 'from-rust.bin');
  await card.getByRole('link', { name: 'Save' }).waitFor({ timeout: 30_000 });
  assert.match(await card.locator('.file-status').textContent(), /checksum verified/);
  assert.equal(await card.locator('.badge').textContent(), shortFingerprint(ready.me.fingerprint));
  assert.equal(sha256(await download(web.page, card)), sha256(rustFile), 'the Rust client’s file arrives byte for byte in the browser');
  await rusty.next('file_sent');

  const png = await web.page.locator('.topbar').screenshot();
  writeFileSync(path.join(env.work, 'picture.png'), png);
  rusty.send(`/send ${path.join(env.work, 'picture.png')}`);
  await fileCard(web.page, 'picture.png').locator('img.preview').waitFor({ timeout: 30_000 });
  await web.page.waitForFunction(() => (document.querySelector('li.msg.file img.preview')?.naturalWidth ?? 0) > 0);

  // Nothing failed verification on either side.
  assert.deepEqual(rusty.events.filter((e) => e.event === 'warning' || e.event === 'file_failed' || e.event === 'send_failed'), []);
  assert.equal(await web.page.locator('li.alert.warning').count(), 0, 'the browser warned about nothing');
  assertNoErrors(web, 'Webby');

  // The Rust client leaves at the end of its input: the browser says so, with time and date.
  rusty.end();
  const left = await waitForAlert(web.page, 'Rusty left the chat');
  assert.match(left, AT_TIME_ON_DATE);
  assert.equal((await rusty.exited).code, 0);
  await waitForMembers(web.page, 1);
  await web.context.close();
});
