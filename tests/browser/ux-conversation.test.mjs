// The conversation view of issue #18, as people use it: light formatting (and hostile
// text that stays inert), @mentions picked with the keyboard that notify the person
// mentioned, messages grouped by sender and minute, the "new messages" line with its jump
// button, the full-screen media viewer, and file progress and cancel on both sides.
// The server paces each connection to 1 MiB/s so that a file of a few MiB takes long
// enough to watch its progress and cancel it in the middle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  artifactPath, assertNoErrors, attach, download, enterRoom, fileCard, newPerson, say, serverAndBrowser, waitForAlert,
  waitForMembers, waitForMessage,
} from './browser-harness.mjs';

const MiB = 1024 * 1024;
const env = serverAndBrowser({
  serverArgs: ['--bytes-per-second', String(MiB), '--byte-burst', String(MiB)],
  workDir: 'streamchat-conversation-',
});
const run = promisify(execFile);
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const composer = (page) => page.getByLabel('Message', { exact: true });

/** Stand-in for the browser's notifications (headless Chromium shows none): records each one. */
async function recordNotifications(person) {
  await person.context.addInitScript(() => {
    const shown = [];
    Reflect.set(window, '__notifications', shown);
    class RecordedNotification extends EventTarget {
      static permission = 'granted';
      static requestPermission() { return Promise.resolve('granted'); }
      constructor(title, options = {}) {
        super();
        shown.push({ title, body: options.body, tag: options.tag });
      }
      close() {}
    }
    Reflect.set(window, 'Notification', RecordedNotification);
  });
}

const notifications = (page) => page.evaluate(() => Reflect.get(window, '__notifications'));

/** Pretends the tab went to the background or came back (headless tabs are always visible). */
async function setVisibility(page, state) {
  await page.evaluate((visibility) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => visibility });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
}

async function people(names, options = {}) {
  const [first, ...others] = names;
  const host = await newPerson(env.browser, options[first]);
  await enterRoom(host, env.server.url, first);
  const guests = [];
  for (const name of others) {
    const guest = await newPerson(env.browser, options[name]);
    await enterRoom(guest, host.page.url(), name);
    guests.push(guest);
  }
  await waitForMembers(host.page, names.length);
  for (const guest of guests) await waitForMembers(guest.page, names.length);
  return [host, ...guests];
}

async function closeAll(...persons) {
  for (const person of persons) await person.context.close();
}

/** The message from `author` whose text contains `fragment`. */
async function messageWith(page, author, fragment) {
  const message = page.locator('li.msg').filter({ has: page.locator('.author', { hasText: author }) })
    .filter({ has: page.locator('.text', { hasText: fragment }) }).first();
  await message.waitFor();
  return message;
}

test('light formatting: bold, italics, code, code blocks and links, built as elements; links open safely and are never fetched', async () => {
  const [alice, bob] = await people(['Alice', 'Bob']);
  const fetched = [];
  alice.page.on('request', (request) => { if (!request.url().startsWith(env.server.url)) fetched.push(request.url()); });

  await say(bob.page, '**Bold** and _italic_ and *also italic*, `a*b*c` and https://example.org/path?q=1. Not a link: javascript:alert(1)');
  const message = await messageWith(alice.page, 'Bob', 'also italic');
  const text = message.locator('.text');
  assert.equal(await text.locator('strong').textContent(), 'Bold');
  assert.deepEqual(await text.locator('em').allTextContents(), ['italic', 'also italic']);
  assert.equal(await text.locator('code').textContent(), 'a*b*c', 'markers inside code stay as written');
  const links = text.getByRole('link');
  assert.equal(await links.count(), 1, 'only the http(s) address is a link');
  const link = links.first();
  assert.equal(await link.textContent(), 'https://example.org/path?q=1', 'the full stop after it is not part of it');
  assert.equal(await link.getAttribute('href'), 'https://example.org/path?q=1');
  assert.equal(await link.getAttribute('target'), '_blank');
  assert.match(await link.getAttribute('rel'), /\bnoopener\b/);
  assert.match(await link.getAttribute('rel'), /\bnoreferrer\b/);
  assert.match(await text.textContent(), /\. Not a link: javascript:alert\(1\)$/);
  assert.equal(await text.evaluate((el) => getComputedStyle(el.querySelector('strong')).fontWeight), '700');

  await say(bob.page, '```\nconst total = a * b * c; // **not bold**\n  indented()\n```');
  const block = (await messageWith(alice.page, 'Bob', 'const total')).locator('pre.code-block');
  assert.equal(await block.textContent(), 'const total = a * b * c; // **not bold**\n  indented()');
  assert.equal(await block.locator('strong, em, a').count(), 0, 'nothing is formatted inside a code block');
  assert.equal(await block.evaluate((el) => getComputedStyle(el).fontFamily.includes('mono')), true);

  // Hostile text inside formatting stays text.
  const hostile = '**<img src=x onerror=window.__pwned=1>** _<script>window.__pwned=2</script>_ [x](javascript:window.__pwned=3) https://a.example/"><svg onload=window.__pwned=4>';
  await say(bob.page, hostile);
  const bad = await messageWith(alice.page, 'Bob', 'onerror');
  assert.equal(await bad.locator('strong').textContent(), '<img src=x onerror=window.__pwned=1>');
  assert.equal(await bad.locator('em').textContent(), '<script>window.__pwned=2</script>');
  assert.equal(await bad.locator('a').getAttribute('href'), 'https://a.example/', 'a quote ends the link: no attribute can be slipped in');
  await alice.page.waitForTimeout(300);
  const state = await alice.page.evaluate(() => ({
    pwned: Reflect.get(window, '__pwned') ?? null,
    injected: document.querySelectorAll('#app img, #app svg, #app script, #app [onerror], #app [onload]').length,
    unsafeLinks: Array.from(document.querySelectorAll('#app a[href]')).filter((a) => !/^(https?:|blob:)/.test(a.getAttribute('href'))).length,
  }));
  assert.deepEqual(state, { pwned: null, injected: 0, unsafeLinks: 0 });
  assert.deepEqual(fetched, [], 'nothing was fetched for the links (no previews)');
  await alice.page.screenshot({ path: artifactPath('conversation-formatting.png') });
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await closeAll(alice, bob);
});

test('@mentions: typing @ offers the people here, picked with the keyboard; the person mentioned is marked and notified', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await recordNotifications(bob);
  await enterRoom(bob, alice.page.url(), 'Bob');
  const carol = await newPerson(env.browser);
  await recordNotifications(carol);
  await enterRoom(carol, alice.page.url(), 'Carol');
  await waitForMembers(alice.page, 3);
  const { page } = alice;
  const input = composer(page);
  const list = page.getByRole('listbox', { name: 'People to mention' });

  await input.pressSequentially('Hi @');
  await list.waitFor();
  assert.deepEqual(await list.getByRole('option').allTextContents(), ['@Bob', '@Carol'], 'the others, not oneself');
  assert.equal(await input.getAttribute('aria-expanded'), 'true');
  await input.press('c');
  assert.deepEqual(await list.getByRole('option').allTextContents(), ['@Carol'], 'narrowed by what is typed');
  await input.press('Backspace');
  await input.press('ArrowDown');
  assert.equal(await list.getByRole('option', { selected: true }).textContent(), '@Carol');
  assert.equal(await input.getAttribute('aria-activedescendant'), await list.getByRole('option', { selected: true }).getAttribute('id'));
  await input.press('Enter');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await input.inputValue(), 'Hi @Carol ', 'Enter picks the name; nothing is sent');
  assert.equal(await page.locator('li.msg').count(), 0);

  await input.pressSequentially('and @');
  await list.waitFor();
  await input.press('Escape');
  await list.waitFor({ state: 'hidden' });
  assert.equal(await input.inputValue(), 'Hi @Carol and @', 'Escape closes the list and keeps the text');
  await input.press('Backspace');
  await input.pressSequentially('@b');
  await list.waitFor();
  await input.press('Tab');
  assert.equal(await input.inputValue(), 'Hi @Carol and @Bob ', 'Tab picks too');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'composer-input', 'the focus stays in the composer');

  // Bob has the tab in the background; Carol has it visible but another window in front.
  await setVisibility(bob.page, 'hidden');
  await carol.page.evaluate(() => { document.hasFocus = () => false; });
  await say(page, 'A plain message for everyone');
  await waitForMessage(carol.page, 'Alice', 'A plain message for everyone');
  assert.deepEqual(await notifications(carol.page), [], 'a plain message does not notify a visible tab');
  assert.equal(await carol.page.title(), 'StreamChat');

  await input.fill('Hi @Carol and @Bob, **look**');
  await input.press('Enter');
  for (const [person, name, other] of [[bob, 'Bob', 'Carol'], [carol, 'Carol', 'Bob']]) {
    const message = await messageWith(person.page, 'Alice', 'look');
    assert.match(await message.getAttribute('class'), /\bmention-me\b/, `${name}'s message is highlighted`);
    assert.equal(await message.locator('.mention.me').textContent(), `@${name}`);
    assert.equal(await message.locator('.mention:not(.me)').textContent(), `@${other}`);
  }
  const mine = await messageWith(page, 'Alice', 'look');
  assert.doesNotMatch(await mine.getAttribute('class'), /mention-me/, 'the author is not mentioned');

  await bob.page.waitForFunction(() => document.title === '(2) @ StreamChat');
  const bobNotes = await notifications(bob.page);
  // Notifications show the name, not the text, unless the person chose otherwise
  // (the privacy setting; ux-room.test.mjs covers each choice).
  assert.deepEqual(bobNotes.at(-1), { title: 'Alice mentioned you — StreamChat', body: 'New message', tag: 'streamchat-mention' });
  await carol.page.waitForFunction(() => document.title === '(1) @ StreamChat');
  assert.deepEqual(await notifications(carol.page), [{ title: 'Alice mentioned you — StreamChat', body: 'New message', tag: 'streamchat-mention' }],
    'the mention notifies even though the tab is visible');
  await carol.page.evaluate(() => window.dispatchEvent(new Event('focus')));
  assert.equal(await carol.page.title(), 'StreamChat', 'seen once the window is in front');
  await setVisibility(bob.page, 'visible');
  assert.equal(await bob.page.title(), 'StreamChat');

  for (const person of [alice, bob, carol]) assertNoErrors(person, 'a person');
  await closeAll(alice, bob, carol);
});

/** Waits until the clock is early in a minute, so that a few messages fall in the same one. */
async function earlyInAMinute() {
  const second = new Date().getUTCSeconds();
  if (second > 40) await new Promise((resolve) => setTimeout(resolve, (61 - second) * 1000));
}

const headerShown = (message) => message.locator('.meta').evaluate((el) => el.getBoundingClientRect().width > 1);

test('messages from the same person in the same minute are grouped under one header; anything between starts a new group', async () => {
  const [alice, bob] = await people(['Alice', 'Bob']);
  await earlyInAMinute();
  for (const text of ['first of three', 'second of three', 'third of three']) await say(bob.page, text);
  const shown = [];
  for (const text of ['first of three', 'second of three', 'third of three']) {
    const message = await waitForMessage(alice.page, 'Bob', text);
    shown.push({ header: await headerShown(message), grouped: /\bgrouped\b/.test(await message.getAttribute('class')) });
  }
  assert.deepEqual(shown, [{ header: true, grouped: false }, { header: false, grouped: true }, { header: false, grouped: true }]);
  // The header is still there for a screen reader.
  const second = await waitForMessage(alice.page, 'Bob', 'second of three');
  assert.equal(await second.locator('.author').textContent(), 'Bob');
  assert.match(await second.locator('time').textContent(), /\d{2}:\d{2}:\d{2}/);
  // Bob sees his own messages grouped too, once the server has them.
  await bob.page.waitForFunction(() => document.querySelectorAll('li.msg.own.grouped').length === 2);

  await say(alice.page, 'Alice between');
  await waitForMessage(alice.page, 'Alice', 'Alice between');
  await say(bob.page, 'after Alice');
  const after = await waitForMessage(alice.page, 'Bob', 'after Alice');
  assert.equal(await headerShown(after), true, 'another sender in between starts a new group');

  const carol = await newPerson(env.browser);
  await enterRoom(carol, alice.page.url(), 'Carol');
  await waitForAlert(alice.page, 'Carol joined the chat');
  await say(bob.page, 'after the alert');
  const afterAlert = await waitForMessage(alice.page, 'Bob', 'after the alert');
  assert.equal(await headerShown(afterAlert), true, 'an alert in between starts a new group');
  await alice.page.screenshot({ path: artifactPath('conversation-grouping.png') });
  for (const person of [alice, bob, carol]) assertNoErrors(person, 'a person');
  await closeAll(alice, bob, carol);
});

test('"New messages": a line before the first unseen message and a button that jumps to it, cleared once seen (phone, dark)', async () => {
  const [alice, bob] = await people(['Alice', 'Bob'], { Alice: { viewport: { width: 360, height: 640 }, colorScheme: 'dark' } });
  const { page } = alice;
  for (let i = 1; i <= 4; i++) await say(bob.page, `Earlier message ${i}\n${'line\n'.repeat(8)}end`);
  await messageWith(page, 'Bob', 'Earlier message 4');
  const scroller = page.locator('.scroller');
  await scroller.evaluate((el) => { el.scrollTop = 0; });
  const jump = page.getByRole('button', { name: /new message/ });
  const divider = page.getByRole('separator', { name: 'New messages' });
  assert.equal(await divider.count(), 0);

  for (const text of ['news one', 'news two', 'news three']) await say(bob.page, text);
  await waitForMessage(page, 'Bob', 'news three');
  await jump.waitFor();
  assert.equal((await jump.textContent()).trim(), '↓ 3 new messages');
  assert.equal(await jump.getAttribute('aria-label'), null);
  assert.equal(await divider.count(), 1);
  assert.equal(await divider.evaluate((el) => el.nextElementSibling?.querySelector('.text')?.textContent), 'news one',
    'the line is right before the first unseen message');
  const box = await jump.boundingBox();
  assert.ok(box.x >= 0 && box.x + box.width <= 360 && box.y + box.height <= 640, 'the button fits a phone screen');
  await page.screenshot({ path: artifactPath('conversation-new-messages-mobile-dark.png') });

  await jump.click();
  const [lineBox, viewBox] = [await divider.boundingBox(), await scroller.boundingBox()];
  assert.ok(lineBox.y >= viewBox.y - 1 && lineBox.y < viewBox.y + viewBox.height, 'the jump shows the line');
  await scroller.evaluate((el) => { el.scrollTop = el.scrollHeight; });
  await jump.waitFor({ state: 'hidden' });
  assert.equal(await divider.count(), 1, 'the line stays where the news began');
  await say(page, 'I read it');
  await divider.waitFor({ state: 'detached' });

  // In the background: the line marks what came meanwhile; back in front, it is seen.
  await setVisibility(page, 'hidden');
  await say(bob.page, 'while away one');
  await say(bob.page, 'while away two');
  await waitForMessage(page, 'Bob', 'while away two');
  assert.equal((await jump.textContent()).trim(), '↓ 2 new messages');
  assert.equal(await divider.evaluate((el) => el.nextElementSibling?.querySelector('.text')?.textContent), 'while away one');
  await setVisibility(page, 'visible');
  await jump.waitFor({ state: 'hidden' });
  assert.equal(await divider.count(), 1);
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await closeAll(alice, bob);
});

/** Runs ffmpeg with a lavfi source; returns the bytes of `name`. */
async function ffmpeg(name, args) {
  const out = path.join(env.work, name);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, out]);
  return readFile(out);
}

test('the full-screen viewer: opened by a click or the keyboard, arrows move through the room’s media, Escape closes, focus returns; at 360 px', async () => {
  const [alice, bob] = await people(['Alice', 'Bob']);
  const red = await ffmpeg('red.png', ['-f', 'lavfi', '-i', 'color=c=red:s=64x48', '-frames:v', '1']);
  const blue = await ffmpeg('blue.png', ['-f', 'lavfi', '-i', 'color=c=blue:s=48x64', '-frames:v', '1']);
  const clip = await ffmpeg('clip.webm', ['-f', 'lavfi', '-i', 'testsrc=duration=1:size=160x120:rate=10', '-c:v', 'libvpx', '-b:v', '100k', '-deadline', 'realtime', '-cpu-used', '8']);
  await attach(bob.page, 'red.png', 'image/png', red);
  await attach(bob.page, 'blue.png', 'image/png', blue);
  await attach(bob.page, 'clip.webm', 'video/webm', clip);
  const { page } = alice;
  for (const name of ['red.png', 'blue.png', 'clip.webm']) await fileCard(page, name).getByRole('link', { name: 'Save' }).waitFor();

  const opener = fileCard(page, 'red.png').getByRole('button', { name: 'View red.png full screen' });
  await opener.click();
  const viewer = page.getByRole('dialog', { name: 'red.png' });
  await viewer.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Close', 'the focus moves into the viewer');
  assert.equal(await viewer.locator('.viewer-position').textContent(), '1 of 3');
  assert.ok(await viewer.locator('img').evaluate((img) => img.complete && img.naturalWidth === 64));
  await page.screenshot({ path: artifactPath('conversation-viewer.png') });

  await page.keyboard.press('ArrowRight');
  await page.getByRole('dialog', { name: 'blue.png' }).waitFor();
  assert.equal(await page.locator('dialog[open] .viewer-position').textContent(), '2 of 3');
  await page.keyboard.press('ArrowRight');
  const videoView = page.getByRole('dialog', { name: 'clip.webm' });
  await videoView.waitFor();
  assert.equal(await videoView.locator('video').count(), 1, 'the video plays in the viewer');
  assert.equal(await fileCard(page, 'clip.webm').locator('.viewer-placeholder').count(), 1);
  const [saved] = await Promise.all([page.waitForEvent('download'), videoView.getByRole('link', { name: 'Save clip.webm' }).click()]);
  assert.equal(sha256(await readFile(await saved.path())), sha256(clip), 'Save gives the file, from memory');
  await page.keyboard.press('ArrowRight');
  await page.getByRole('dialog', { name: 'red.png' }).waitFor();
  assert.equal(await fileCard(page, 'clip.webm').locator('video').count(), 1, 'the video is back in its card');
  await page.keyboard.press('ArrowLeft');
  await videoView.waitFor();

  // Tab stays inside the viewer.
  for (let i = 0; i < 8; i++) {
    await page.keyboard.press('Tab');
    assert.ok(await page.evaluate(() => document.activeElement?.closest('dialog.viewer') !== null), `focus inside after ${i + 1} Tabs`);
  }
  await page.keyboard.press('Escape');
  await page.locator('dialog.viewer[open]').waitFor({ state: 'detached' });
  assert.equal(await page.locator('dialog.viewer').isVisible(), false);
  assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'View red.png full screen', 'the focus is back where it was');
  // The video goes back to its card when the dialog has closed (its close event).
  await fileCard(page, 'clip.webm').locator('video').waitFor({ timeout: 5000 });
  assert.equal(await fileCard(page, 'clip.webm').locator('video').count(), 1);

  // A phone in dark mode, with the keyboard only.
  await page.setViewportSize({ width: 360, height: 640 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await fileCard(page, 'blue.png').getByRole('button', { name: 'View blue.png full screen' }).focus();
  await page.keyboard.press('Enter');
  const phone = page.getByRole('dialog', { name: 'blue.png' });
  await phone.waitFor();
  const dialogBox = await phone.boundingBox();
  assert.deepEqual([dialogBox.x, dialogBox.y, dialogBox.width, dialogBox.height], [0, 0, 360, 640], 'the viewer fills the screen');
  const imageBox = await phone.locator('img').boundingBox();
  assert.ok(imageBox.x >= 0 && imageBox.x + imageBox.width <= 360 && imageBox.y + imageBox.height <= 640, 'the image fits');
  for (const name of ['Close', 'Previous', 'Next']) {
    const button = await phone.getByRole('button', { name }).boundingBox();
    assert.ok(button.x >= 0 && button.x + button.width <= 360 && button.y + button.height <= 640, `${name} is on screen`);
  }
  await page.screenshot({ path: artifactPath('conversation-viewer-mobile-dark.png') });
  await page.keyboard.press('Escape');
  await page.locator('dialog.viewer[open]').waitFor({ state: 'detached' });
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await closeAll(alice, bob);
});

const DETAIL = /^ · [\d.]+ (B|KiB|MiB) of 6\.0 MiB \(\d{1,2}%\) · [\d.]+ (KiB|MiB)\/s · (\d+ s|\d+ min( \d+ s)?) left$/;

/** Waits until the card of `name` on `page` tells bytes, percentage, speed and time left; returns that line. */
async function detailed(page, name) {
  const detail = fileCard(page, name).locator('.file-detail');
  await page.waitForFunction(({ fileName, pattern }) => {
    for (const card of document.querySelectorAll('li.msg.file')) {
      if (card.querySelector('.file-name')?.textContent !== fileName) continue;
      if (new RegExp(pattern).test(card.querySelector('.file-detail')?.textContent ?? '')) return true;
    }
    return false;
  }, { fileName: name, pattern: DETAIL.source }, { timeout: 20_000, polling: 100 });
  return detail.textContent();
}

test('file progress in MiB, percent, speed and time left on both sides; a receiver can cancel for itself, the sender for all', async () => {
  const [alice, bob, carol] = await people(['Alice', 'Bob', 'Carol']);
  const file = randomBytes(6 * MiB);
  await attach(alice.page, 'big.bin', 'application/octet-stream', file);
  assert.match(await detailed(bob.page, 'big.bin'), DETAIL, 'the receiver sees amount, percentage, speed and time left');
  assert.match(await detailed(alice.page, 'big.bin'), DETAIL, 'the sender too');
  await bob.page.screenshot({ path: artifactPath('conversation-file-progress.png') });

  // Bob cancels for himself: nothing of it stays with him; Alice and Carol go on.
  const bobCard = fileCard(bob.page, 'big.bin');
  await bobCard.getByRole('button', { name: 'Cancel big.bin' }).click();
  await bobCard.locator('.file-status', { hasText: 'You cancelled it' }).waitFor();
  assert.match(await bobCard.locator('.file-status').textContent(), /^You cancelled it \(\d+ of 24 parts had arrived\); nothing of it was kept\.$/);
  const carolCard = fileCard(carol.page, 'big.bin');
  await carolCard.getByRole('link', { name: 'Save' }).waitFor({ timeout: 30_000 });
  assert.equal(sha256(await download(carol.page, carolCard)), sha256(file), 'Carol gets the file whole');
  await fileCard(alice.page, 'big.bin').locator('.file-status', { hasText: 'Sent' }).waitFor({ timeout: 15_000 });
  assert.match(await bobCard.locator('.file-status').textContent(), /^You cancelled it/, 'the parts that kept coming changed nothing');
  assert.equal(await bobCard.getByRole('link', { name: 'Save' }).count(), 0);
  assert.equal(await bobCard.locator('progress').count(), 0);
  assert.equal(await bobCard.locator('.file-detail').textContent(), '');

  // Alice cancels the next one: everyone is told.
  await attach(alice.page, 'second.bin', 'application/octet-stream', randomBytes(6 * MiB));
  await detailed(bob.page, 'second.bin');
  await fileCard(alice.page, 'second.bin').getByRole('button', { name: 'Cancel second.bin' }).click();
  for (const person of [bob, carol]) {
    await fileCard(person.page, 'second.bin').locator('.file-status', { hasText: 'Cancelled by the sender' }).waitFor({ timeout: 5000 });
  }
  for (const person of [alice, bob, carol]) assertNoErrors(person, 'a person');
  await closeAll(alice, bob, carol);
});
