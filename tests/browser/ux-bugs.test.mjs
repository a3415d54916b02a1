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

test('on a phone in dark mode the encryption dialog opens at its title, and the drawer closes on Escape and on a tap outside', async () => {
  const alice = await newPerson(env.browser, { viewport: { width: 360, height: 640 }, colorScheme: 'dark' });
  await enterRoom(alice, env.server.url, 'Alice');
  const { page } = alice;

  await page.getByRole('button', { name: /encrypted/ }).click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor();
  const scroll = await dialog.evaluate((el) => ({ top: el.scrollTop, height: el.scrollHeight, visible: el.clientHeight }));
  assert.ok(scroll.height > scroll.visible, `the dialog is taller than the screen (${scroll.height} > ${scroll.visible}), so where it opens matters`);
  assert.equal(scroll.top, 0, 'the dialog opens at its top');
  const title = dialog.getByRole('heading', { name: 'Messages are end-to-end encrypted' });
  const [titleBox, dialogBox] = [await title.boundingBox(), await dialog.boundingBox()];
  assert.ok(titleBox.y >= dialogBox.y, 'the title is in view');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });

  const toggle = page.getByRole('button', { name: /^Online/ });
  const drawer = page.locator('aside.members');
  await toggle.click();
  await drawer.waitFor({ state: 'visible' });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
  await page.keyboard.press('Escape');
  await drawer.waitFor({ state: 'hidden' });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');

  await toggle.click();
  await drawer.waitFor({ state: 'visible' });
  // A tap inside the drawer keeps it open; one outside (on the conversation) closes it.
  await drawer.locator('h2').click();
  assert.ok(await drawer.isVisible(), 'a tap inside keeps it open');
  const box = await drawer.boundingBox();
  await page.mouse.click(box.x + box.width + 20, box.y + box.height / 2);
  await drawer.waitFor({ state: 'hidden' });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assertNoErrors(alice, 'Alice');
  await alice.context.close();
});

test('at 800 px wide (and every width down to the phone layout) the header stays on one line', async () => {
  const alice = await newPerson(env.browser, { viewport: { width: 800, height: 700 } });
  await enterRoom(alice, env.server.url, 'Alice');
  for (const width of [800, 721, 900, 1101, 1160, 1161, 1280]) {
    await alice.page.setViewportSize({ width, height: 700 });
    const rows = await alice.page.locator('header.topbar').evaluate((header) => {
      const boxes = [...header.children].map((child) => child.getBoundingClientRect()).filter((box) => box.width > 0);
      const centers = boxes.map((box) => box.top + box.height / 2);
      return { spread: Math.max(...centers) - Math.min(...centers), height: header.getBoundingClientRect().height, scrollWidth: header.scrollWidth, width: header.clientWidth };
    });
    assert.ok(rows.spread < 4, `${width} px: every part of the header is on one line (centres ${rows.spread.toFixed(1)} px apart)`);
    assert.ok(rows.height < 64, `${width} px: the header is one line high (${rows.height} px)`);
    assert.ok(rows.scrollWidth <= rows.width, `${width} px: nothing overflows it`);
  }
  assertNoErrors(alice, 'Alice');
  await alice.context.close();
});

test('a message that can never fit offers no Retry: it says why, and offers Edit and Remove', async () => {
  const server = await startServer(['--max-message-bytes', '4096']);
  const alice = await newPerson(env.browser);
  try {
    await enterRoom(alice, server.url, 'Alice');
    const { page } = alice;
    const big = 'x'.repeat(5_000);
    await say(page, big);
    const message = page.locator('li.msg.own').filter({ has: page.locator('.text', { hasText: 'xxxx' }) });
    const status = message.locator('.status.failed');
    await status.waitFor();
    assert.match(await status.textContent(), /Not sent: too large for this server.*limit is 4096/);
    assert.equal(await message.getByRole('button', { name: /retry|try again/i }).count(), 0, 'no Retry');
    assert.equal(await message.getByRole('button').count(), 2, 'only Edit and Remove');

    await message.getByRole('button', { name: 'Edit' }).click();
    assert.equal(await composer(page).inputValue(), big, 'Edit puts the whole text back in the composer');
    await message.waitFor({ state: 'detached' });
    assert.ok(await composer(page).evaluate((el) => el === document.activeElement));

    await composer(page).press('Enter');
    await status.waitFor();
    await message.getByRole('button', { name: 'Remove' }).click();
    await message.waitFor({ state: 'detached' });
    assert.equal(await page.locator('li.msg').count(), 0);
    assertNoErrors(alice, 'Alice');
  } finally {
    await alice.context.close();
    await server.stop();
  }
});

test('a screen reader does not hear a hex fingerprint beside each message; the full one stays in the member dialog', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  const [, bobListed] = (await waitForMembers(alice.page, 2)).sort((a, b) => Number(b.self) - Number(a.self));
  await say(bob.page, 'Can you hear me?');
  const message = await waitForMessage(alice.page, 'Bob', 'Can you hear me?');

  // The badge is still shown…
  const badge = message.locator('.badge');
  assert.match(await badge.textContent(), /^[0-9a-f]{4} [0-9a-f]{4}$/);
  assert.ok(await badge.isVisible());
  // …but not read out.
  const heard = await message.ariaSnapshot();
  assert.doesNotMatch(heard, /[0-9a-f]{4} [0-9a-f]{4}/, `no hex in what is read:\n${heard}`);
  assert.match(heard, /Bob/);
  assert.match(heard, /Can you hear me\?/);
  const timeline = await alice.page.getByRole('log', { name: 'Messages' }).ariaSnapshot();
  assert.doesNotMatch(timeline, /[0-9a-f]{4} [0-9a-f]{4}/, 'nowhere in the timeline');

  // Where people compare keys, the whole fingerprint is there to hear.
  await alice.page.locator('.member-list .member', { hasText: 'Bob' }).click();
  const dialog = alice.page.getByRole('dialog');
  assert.equal(await dialog.locator('.fingerprint-large').textContent(), bobListed.fingerprint);
  assert.match(await dialog.ariaSnapshot(), new RegExp(bobListed.fingerprint));
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});
