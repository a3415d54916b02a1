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
import { SealedMember } from './sealed-member.mjs';
import {
  AT_TIME_ON_DATE, TIME_AND_DATE, assertNoErrors, enterRoom, newPerson, say, waitForAlert, waitForMembers, waitForMessage, fileCard, download, serverAndBrowser
} from './browser-harness.mjs';

const env = serverAndBrowser({ workDir: 'streamchat-interop-' });

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const shortFingerprint = (fingerprint) => fingerprint.split(' ').slice(0, 2).join(' ');

test('a Rust client and a browser chat and share files, verifying each other', async () => {
  const { code, stdout } = await runCli(['room', 'new', '--server', env.server.url, '--kind', 'v1']);
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

test('replies, reactions, edits and deletions go both ways; a forged edit or deletion changes nothing', async () => {
  const { stdout } = await runCli(['room', 'new', '--server', env.server.url, '--kind', 'v1']);
  const link = stdout.trim();
  const rusty = startBot(link, 'Rusty');
  const ready = await rusty.next('ready');
  const web = await newPerson(env.browser);
  await enterRoom(web, link, 'Webby');
  await rusty.next('joined');
  const { page } = web;
  const composer = page.getByLabel('Message', { exact: true });

  // Terminal → web: a text, numbered 1 on the terminal side.
  rusty.send('Where shall we meet?');
  const question = await rusty.next((e) => e.event === 'queued' && e.kind === 'text');
  assert.equal(question.number, 1);
  assert.deepEqual(question.message.key, ready.me.key, 'a text is named by its author’s key…');
  const rustyText = await waitForMessage(page, 'Rusty', 'Where shall we meet?');
  await rusty.next('sent');

  // Web → terminal: a reply, made with the Reply button; the quote shows above the composer.
  await rustyText.hover();
  await rustyText.getByRole('button', { name: 'Reply to Rusty' }).click();
  await page.locator('.reply-bar').filter({ hasText: 'Replying to Rusty: Where shall we meet?' }).waitFor();
  await composer.fill('At the station.');
  await composer.press('Enter');
  assert.equal(await page.locator('.reply-bar').isHidden(), true, 'the reply bar goes once the reply is sent');
  const ownReply = await waitForMessage(page, 'Webby', 'At the station.');
  assert.match(await ownReply.locator('.reply-quote').textContent(), /Rusty.*Where shall we meet\?/);
  const reply = await rusty.next('message');
  assert.equal(reply.text, 'At the station.');
  assert.equal(reply.number, 2);
  assert.equal(reply.reply_to.number, 1, 'the terminal knows which of its texts was answered');
  assert.equal(reply.reply_to.text, 'Where shall we meet?');
  assert.equal(reply.reply_to.quote, 'Where shall we meet?');
  assert.deepEqual(reply.reply_to.message, question.message);

  // Cancelling a reply: Escape, or the Cancel button; the next text is a plain one.
  await rustyText.hover();
  await rustyText.getByRole('button', { name: 'Reply to Rusty' }).click();
  await composer.press('Escape');
  assert.equal(await page.locator('.reply-bar').isHidden(), true);

  // Terminal → web: a reply to the browser's text, shown with the quote; a click on the
  // quote brings the answered message into view and focus.
  rusty.send('/reply 2 See you there');
  const rustyReply = await waitForMessage(page, 'Rusty', 'See you there');
  const quote = rustyReply.locator('.reply-quote');
  assert.match(await quote.textContent(), /Webby.*At the station\./);
  await quote.click();
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-id')), await ownReply.getAttribute('data-id'));
  await composer.focus();

  // Web → terminal: a reaction from the picker, and taken back with its chip.
  await rustyText.hover();
  await rustyText.getByRole('button', { name: 'React', exact: true }).click();
  await rustyText.getByRole('button', { name: 'React with thumbs up' }).click();
  const chip = rustyText.locator('.reaction', { hasText: '👍' });
  await chip.waitFor();
  assert.equal(await chip.getAttribute('aria-pressed'), 'true');
  assert.equal((await chip.textContent()).replace(/\s+/g, ''), '👍1');
  let reaction = await rusty.next('reaction');
  assert.equal(reaction.number, 1);
  assert.equal(reaction.emoji, '👍');
  assert.equal(reaction.add, true);
  assert.deepEqual(reaction.reactions, [{ emoji: '👍', count: 1, names: ['Webby'], mine: false }]);
  await chip.click();
  await chip.waitFor({ state: 'detached' });
  reaction = await rusty.next('reaction');
  assert.equal(reaction.add, false);
  assert.deepEqual(reaction.reactions, []);

  // Terminal → web: a reaction on the browser's text, counted with who.
  rusty.send('/react 2 🎉');
  const party = ownReply.locator('.reaction', { hasText: '🎉' });
  await party.waitFor();
  assert.equal(await party.getAttribute('aria-pressed'), 'false');
  assert.equal(await party.getAttribute('title'), 'Rusty');
  // The browser adds its own: one chip, two people.
  await party.click();
  await ownReply.locator('.reaction', { hasText: '2' }).waitFor();
  reaction = await rusty.next((e) => e.event === 'reaction' && e.from.name === 'Webby');
  assert.deepEqual(reaction.reactions, [{ emoji: '🎉', count: 2, names: ['Rusty', 'Webby'], mine: true }]);

  // Web → terminal: an edit of its own text, inline (Enter saves); Up in an empty composer
  // opens the last own text for editing, and Escape leaves it as it was.
  await composer.fill('');
  await composer.press('ArrowUp');
  const editor = page.getByRole('textbox', { name: 'Text of your message' });
  await editor.waitFor();
  assert.equal(await editor.inputValue(), 'At the station.');
  await editor.press('Escape');
  await editor.waitFor({ state: 'detached' });
  await waitForMessage(page, 'Webby', 'At the station.');
  await ownReply.hover();
  await ownReply.getByRole('button', { name: 'Edit your message' }).click();
  await editor.fill('At the central station.');
  await editor.press('Enter');
  const edited = await waitForMessage(page, 'Webby', 'At the central station.');
  await edited.locator('.meta .edited', { hasText: 'edited' }).waitFor();
  assert.equal(await edited.locator('.reaction', { hasText: '🎉' }).count(), 1, 'reactions stay with an edited text');
  const editedInRust = await rusty.next('edited');
  assert.equal(editedInRust.number, 2);
  assert.equal(editedInRust.text, 'At the central station.');
  // Rusty's text is not the browser's to change: no Edit or Delete on it.
  assert.equal(await rustyText.getByRole('button', { name: 'Edit your message' }).count(), 0);

  // Terminal → web: an edit.
  rusty.send('/edit 1 Where and when shall we meet?');
  const rustyEdited = await waitForMessage(page, 'Rusty', 'Where and when shall we meet?');
  await rustyEdited.locator('.meta .edited').waitFor();
  // The browser's reply quotes it as it is now.
  await edited.locator('.reply-quote', { hasText: 'Where and when shall we meet?' }).waitFor();
  assert.equal(await page.locator('li.msg .text', { hasText: /^Where shall we meet\?$/ }).count(), 0);

  // Web → terminal: deleting its own text, after a confirmation.
  await say(page, 'oops, wrong room');
  const oops = await rusty.next((e) => e.event === 'message' && e.text === 'oops, wrong room');
  const oopsInWeb = await waitForMessage(page, 'Webby', 'oops, wrong room');
  await page.locator('li.msg.own.pending').waitFor({ state: 'detached' });
  const oopsId = await oopsInWeb.getAttribute('data-id');
  await oopsInWeb.hover();
  await oopsInWeb.getByRole('button', { name: 'Delete your message' }).click();
  const confirm = page.getByRole('dialog', { name: 'Delete this message?' });
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await page.locator(`li.msg[data-id="${oopsId}"] .deleted-label`, { hasText: 'message deleted' }).waitFor();
  assert.equal(await page.getByText('oops, wrong room').count(), 0, 'the text is gone from the page');
  const deleted = await rusty.next('deleted');
  assert.equal(deleted.number, oops.number);

  // Terminal → web: a deletion.
  rusty.send('temporary words');
  const temporary = await rusty.next((e) => e.event === 'queued' && e.kind === 'text');
  const temporaryInWeb = await waitForMessage(page, 'Rusty', 'temporary words');
  const temporaryId = await temporaryInWeb.getAttribute('data-id');
  rusty.send(`/delete ${temporary.number}`);
  await page.locator(`li.msg[data-id="${temporaryId}"] .deleted-label`).waitFor();
  assert.equal(await page.getByText('temporary words').count(), 0);

  // A forged edit and a forged deletion: Mallory, a member with the link, signs bodies that
  // name Rusty's and Webby's texts. Both clients refuse them, say so, and show the words as
  // their authors left them.
  const webbysText = reply.message;
  const mallory = await SealedMember.join(env.server.url, link, 'Mallory');
  await waitForMembers(page, 3);
  await rusty.next('joined');
  await mallory.send({ type: 'edit', to: question.message, text: 'forged words', sent_at: Date.now() });
  await mallory.send({ type: 'edit', to: webbysText, text: 'forged words', sent_at: Date.now() + 1 });
  await mallory.send({ type: 'delete', to: question.message, sent_at: Date.now() + 2 });
  await waitForAlert(page, 'Mallory tried to delete someone else’s message; it was ignored.');
  assert.match(await waitForAlert(page, 'Mallory tried to edit someone else’s message'), /it was ignored/);
  const warning = await rusty.next((e) => e.event === 'warning' && e.message.includes('delete'));
  assert.match(warning.message, /Mallory tried to delete someone else's message; it was ignored/);
  assert.equal(rusty.events.filter((e) => e.event === 'edited' || e.event === 'deleted').length, 2, 'only the two genuine changes');
  assert.equal(await page.getByText('forged words').count(), 0);
  await waitForMessage(page, 'Rusty', 'Where and when shall we meet?');
  await waitForMessage(page, 'Webby', 'At the central station.');
  // Mallory naming her own key with Rusty's sent_at names no text at all: nothing happens.
  await mallory.send({ type: 'edit', to: { key: mallory.key, sent_at: question.message.sent_at }, text: 'forged words', sent_at: Date.now() + 3 });
  rusty.send('still here');
  await waitForMessage(page, 'Rusty', 'still here');
  assert.equal(await page.getByText('forged words').count(), 0);
  mallory.close();

  assert.deepEqual(rusty.events.filter((e) => e.event === 'send_failed' || e.event === 'error'), []);
  assertNoErrors(web, 'Webby');
  rusty.end();
  await rusty.exited;
  await web.context.close();
});
