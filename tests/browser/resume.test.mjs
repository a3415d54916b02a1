// Resumable sessions in real Chromium: a person whose network goes away comes back as the
// same member and gets what was missed, once and in order (nobody sees them leave); a
// person away for longer than the server keeps their place is told plainly what could not
// be recovered; and texts typed while offline wait as "sending…" and go out by themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../harness.mjs';
import {
  assertNoErrors, attach, enterRoom, fileCard, launchBrowser, newPerson, say, waitConnected, waitForAlert, waitForMembers,
  waitForMessage, serverAndBrowser,
} from './browser-harness.mjs';

const env = serverAndBrowser();

/** The texts of every message `page` shows from `author`, top to bottom. */
async function textsFrom(page, author) {
  return page.locator('li.msg:not(.file)').evaluateAll((items, name) => items
    .filter((item) => item.querySelector('.author')?.textContent === name)
    .map((item) => item.querySelector('.text')?.textContent ?? ''), author);
}

/** The text of every alert `page` shows, top to bottom. */
async function alerts(page) {
  return page.locator('li.alert').allTextContents();
}

/** A PNG of `width`×`height` random pixels, drawn in the page (about 4 bytes a pixel: noise does not compress). */
async function noisePng(page, width, height) {
  const bytes = await page.evaluate(async ([w, h]) => {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const context = canvas.getContext('2d');
    const image = context.createImageData(w, h);
    const random = new Uint8Array(65536);
    for (let offset = 0; offset < image.data.length; offset += random.length) {
      crypto.getRandomValues(random);
      image.data.set(random.subarray(0, Math.min(random.length, image.data.length - offset)), offset);
    }
    for (let alpha = 3; alpha < image.data.length; alpha += 4) image.data[alpha] = 255;
    context.putImageData(image, 0, 0);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
    return Array.from(new Uint8Array(await blob.arrayBuffer()));
  }, [width, height]);
  return Buffer.from(bytes);
}

/** Drops `person`'s console reports of WebSocket connections refused while offline. */
function withoutOfflineNoise(person) {
  person.errors = person.errors.filter((error) => !/WebSocket connection to .* failed|ERR_INTERNET_DISCONNECTED/.test(error));
  return person;
}

/** Two people in one room on `server`. */
async function aliceAndBob(browser, server) {
  const alice = await newPerson(browser);
  await enterRoom(alice, server.url, 'Alice');
  const bob = await newPerson(browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  await waitForMembers(bob.page, 2);
  return { alice, bob };
}

test('offline for a few seconds: back as the same member, everything missed arrives once and in order', async () => {
  const { alice, bob } = await aliceAndBob(env.browser, env.server);
  await say(alice.page, 'before the blip');
  await waitForMessage(bob.page, 'Alice', 'before the blip');
  const png = await noisePng(alice.page, 840, 840);
  assert.ok(png.length > 2 * 1024 * 1024, `the image is over 2 MiB (${png.length} bytes)`);

  await bob.context.setOffline(true);
  await bob.page.locator('.conn-status[data-tone=bad]').waitFor();
  const sentAt = Date.now();
  for (const text of ['one while Bob is away', 'two while Bob is away', 'three while Bob is away']) {
    await say(alice.page, text);
    await alice.page.locator('li.msg.own', { hasText: text }).locator('.status').waitFor({ state: 'detached' });
  }
  await attach(alice.page, 'noise.png', 'image/png', png);
  await fileCard(alice.page, 'noise.png').locator('.file-status', { hasText: 'Sent' }).waitFor({ timeout: 30_000 });
  // Offline for 8 seconds in all.
  await bob.page.waitForTimeout(Math.max(0, 8000 - (Date.now() - sentAt)));
  await bob.context.setOffline(false);
  await waitConnected(bob.page, 30_000);

  await waitForMessage(bob.page, 'Alice', 'three while Bob is away');
  const image = fileCard(bob.page, 'noise.png');
  await image.locator('img.preview').waitFor({ timeout: 30_000 });
  await bob.page.waitForFunction(() => (document.querySelector('li.msg.file img.preview')?.naturalWidth ?? 0) === 840);
  assert.match(await image.locator('.file-status').textContent(), /checksum verified/);
  assert.deepEqual(await textsFrom(bob.page, 'Alice'),
    ['before the blip', 'one while Bob is away', 'two while Bob is away', 'three while Bob is away'],
    'each message once, in order');
  assert.ok((await alerts(bob.page)).some((text) => /You reconnected at/.test(text)), 'Bob is told he is back');

  // Alice never saw Bob leave (or join again): he was reconnecting, then back.
  await say(bob.page, 'back again');
  await waitForMessage(alice.page, 'Bob', 'back again');
  const aliceAlerts = await alerts(alice.page);
  assert.equal(aliceAlerts.filter((text) => /Bob left the chat/.test(text)).length, 0, aliceAlerts.join('\n'));
  assert.equal(aliceAlerts.filter((text) => /Bob (re)?joined the chat/.test(text)).length, 1, aliceAlerts.join('\n'));
  assert.deepEqual((await waitForMembers(alice.page, 2)).map((m) => m.name).sort(), ['Alice', 'Bob']);
  assert.equal(await alice.page.locator('.member-list .away').count(), 0, 'nobody shown as reconnecting any more');

  assertNoErrors(alice, 'Alice');
  assertNoErrors(withoutOfflineNoise(bob), 'Bob');
  await alice.context.close();
  await bob.context.close();
});

test('offline for longer than the grace and the window: one leave, one join, and a gap line with the count', async () => {
  // The server keeps a dropped member's place 2 s and its events 6 s; pings every second
  // notice a dead connection within about 2 s.
  const server = await startServer([
    '--resume-grace-secs', '2', '--resume-window-secs', '6', '--ping-interval-secs', '1', '--ping-timeout-secs', '1',
  ]);
  const browser = await launchBrowser();
  try {
    const { alice, bob } = await aliceAndBob(browser, server);
    await say(alice.page, 'before the outage');
    await waitForMessage(bob.page, 'Alice', 'before the outage');

    await bob.context.setOffline(true);
    // The server notices the dead connection: Bob is reconnecting for the grace, then gone.
    await alice.page.locator('.member-list .member', { hasText: 'Bob' }).locator('.away', { hasText: 'reconnecting' }).waitFor();
    // Sent right away: older than the window by the time Bob is back, so the server can
    // only say "at least".
    await sendWithoutTyping(alice.page, 'early, lost for good');
    await waitForAlert(alice.page, /Bob left the chat at/, 15_000);
    await alice.page.waitForTimeout(7000);
    // Sent just before Bob is back: still in the window, so counted.
    const late = ['late one', 'late two', 'late three'];
    for (const text of late) await sendWithoutTyping(alice.page, text);
    await bob.context.setOffline(false);
    await waitConnected(bob.page, 30_000);

    const gap = await waitForAlert(bob.page, /You were offline for/);
    assert.match(gap, /^You were offline for \d+ seconds: at least 3 messages could not be recovered$/);
    await waitForAlert(bob.page, /You rejoined the chat at/);
    await waitForAlert(alice.page, /Bob rejoined the chat at/);
    await say(alice.page, 'after the outage');
    await waitForMessage(bob.page, 'Alice', 'after the outage');
    assert.deepEqual(await textsFrom(bob.page, 'Alice'), ['before the outage', 'after the outage'], 'nothing from the gap is shown');

    const aliceAlerts = await alerts(alice.page);
    assert.equal(aliceAlerts.filter((text) => /Bob left the chat/.test(text)).length, 1, aliceAlerts.join('\n'));
    assert.equal(aliceAlerts.filter((text) => /Bob rejoined the chat/.test(text)).length, 1, aliceAlerts.join('\n'));
    assert.deepEqual((await waitForMembers(alice.page, 2)).map((m) => m.name).sort(), ['Alice', 'Bob']);

    assertNoErrors(alice, 'Alice');
    assertNoErrors(withoutOfflineNoise(bob), 'Bob');
  } finally {
    await browser.close();
    await server.stop();
  }
});

test('offline 60 s with a 20 s grace: one leave, one join, and a gap line with the exact count', async () => {
  // The defaults but for the heartbeat (5 s + 5 s, so the server notices the dead
  // connection well within the minute): the 120 s window still holds what Bob missed,
  // so the count is exact.
  const server = await startServer(['--resume-grace-secs', '20', '--ping-interval-secs', '5', '--ping-timeout-secs', '5']);
  const browser = await launchBrowser();
  try {
    const { alice, bob } = await aliceAndBob(browser, server);
    await say(alice.page, 'before the minute');
    await waitForMessage(bob.page, 'Alice', 'before the minute');
    const offlineAt = Date.now();
    await bob.context.setOffline(true);
    await waitForAlert(alice.page, /Bob left the chat at/, 45_000);
    const missed = ['one', 'two', 'three'];
    for (const text of missed) await say(alice.page, text);
    await alice.page.waitForTimeout(Math.max(0, 60_000 - (Date.now() - offlineAt)));
    await bob.context.setOffline(false);
    await waitConnected(bob.page, 30_000);

    const gap = await waitForAlert(bob.page, /You were offline for/);
    assert.match(gap, /^You were offline for 1 minute: 3 messages could not be recovered$/);
    await waitForAlert(alice.page, /Bob rejoined the chat at/);
    const aliceAlerts = await alerts(alice.page);
    assert.equal(aliceAlerts.filter((text) => /Bob left the chat/.test(text)).length, 1, aliceAlerts.join('\n'));
    assert.equal(aliceAlerts.filter((text) => /Bob rejoined the chat/.test(text)).length, 1, aliceAlerts.join('\n'));
    assertNoErrors(alice, 'Alice');
    assertNoErrors(withoutOfflineNoise(bob), 'Bob');
  } finally {
    await browser.close();
    await server.stop();
  }
});

/**
 * Sends `text` with no "is typing" notice before it (the value is set, not typed): a
 * typing notice is a sealed message too, and the server counts every message missed.
 * Waits for the server's acknowledgement unless `wait` is false.
 */
async function sendWithoutTyping(page, text, { wait = true } = {}) {
  const input = page.getByLabel('Message', { exact: true });
  await input.evaluate((element, value) => { element.value = value; }, text);
  await input.press('Enter');
  if (wait) await page.locator('li.msg.own', { hasText: text }).locator('.status').waitFor({ state: 'detached' });
}

test('texts typed while offline show as sending and arrive once, in order, when back', async () => {
  const { alice, bob } = await aliceAndBob(env.browser, env.server);
  await say(alice.page, 'still here');
  await waitForMessage(bob.page, 'Alice', 'still here');

  await alice.context.setOffline(true);
  await alice.page.locator('.conn-status[data-tone=bad]').waitFor();
  const queued = ['typed offline 1', 'typed offline 2', 'typed offline 3'];
  for (const text of queued) await say(alice.page, text);
  for (const text of queued) {
    assert.match(await alice.page.locator('li.msg.own', { hasText: text }).locator('.status').textContent(), /Sending…/);
  }
  assert.equal(await alice.page.getByRole('button', { name: 'Retry' }).count(), 0, 'no manual retry');
  await alice.page.waitForTimeout(3000);
  await alice.context.setOffline(false);
  await waitConnected(alice.page, 30_000);
  for (const text of queued) {
    await alice.page.locator('li.msg.own', { hasText: text }).locator('.status').waitFor({ state: 'detached' });
  }
  await waitForMessage(bob.page, 'Alice', 'typed offline 3');
  await say(alice.page, 'and one more');
  await waitForMessage(bob.page, 'Alice', 'and one more');
  assert.deepEqual(await textsFrom(bob.page, 'Alice'), ['still here', ...queued, 'and one more'], 'each once, in order');
  assert.deepEqual(await textsFrom(alice.page, 'Alice (you)'), ['still here', ...queued, 'and one more'], 'in order for Alice too');

  assertNoErrors(withoutOfflineNoise(alice), 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});

test('after a server restart the session cannot resume: both rejoin and are told what may be lost', async () => {
  const server = await startServer();
  const browser = await launchBrowser();
  let restarted = null;
  try {
    const { alice, bob } = await aliceAndBob(browser, server);
    await say(alice.page, 'before the restart');
    await waitForMessage(bob.page, 'Alice', 'before the restart');
    const { port } = server;
    await server.stop();
    await alice.page.locator('.conn-status[data-tone=bad]').waitFor();
    await say(alice.page, 'typed during the restart');
    restarted = await startServer([], { port });
    await waitConnected(alice.page, 30_000);
    await waitConnected(bob.page, 30_000);
    for (const person of [alice, bob]) {
      const gap = await waitForAlert(person.page, /You were offline for/);
      assert.match(gap, /^You were offline for \d+ seconds?: .*could not be recovered \(the server restarted\)$/);
    }
    // The text typed meanwhile goes out after Alice's rejoin (Bob sees it if he was back
    // first; if not, his gap line counted it), and never twice.
    await alice.page.locator('li.msg.own', { hasText: 'typed during the restart' }).locator('.status').waitFor({ state: 'detached' });
    await say(alice.page, 'after the restart');
    await waitForMessage(bob.page, 'Alice', 'after the restart');
    const seen = await textsFrom(bob.page, 'Alice');
    assert.ok(['before the restart|after the restart', 'before the restart|typed during the restart|after the restart'].includes(seen.join('|')), seen.join('|'));
    // Nobody is announced as leaving for good: everyone came back within the grace.
    const aliceAlerts = await alerts(alice.page);
    assert.equal(aliceAlerts.filter((text) => /Bob left the chat/.test(text)).length, 0, aliceAlerts.join('\n'));
    assert.equal(aliceAlerts.filter((text) => /Bob (re)?joined the chat/.test(text)).length, 1, aliceAlerts.join('\n'));
    for (const person of [alice, bob]) assertNoErrors(withoutOfflineNoise(person), 'after the restart');
  } finally {
    await browser.close();
    await (restarted ?? server).stop();
  }
});

test('texts refused for sending too fast wait their turn and all arrive, in order', async () => {
  // Two messages at once, then one a second.
  const server = await startServer(['--messages-per-second', '1', '--message-burst', '2']);
  const browser = await launchBrowser();
  try {
    const { alice, bob } = await aliceAndBob(browser, server);
    const texts = ['fast 1', 'fast 2', 'fast 3', 'fast 4', 'fast 5'];
    for (const text of texts) await sendWithoutTyping(alice.page, text, { wait: false });
    await waitForMessage(bob.page, 'Alice', 'fast 5', 30_000);
    for (const text of texts) {
      await alice.page.locator('li.msg.own', { hasText: text }).locator('.status').waitFor({ state: 'detached' });
    }
    assert.deepEqual(await textsFrom(bob.page, 'Alice'), texts);
    assert.equal(await alice.page.locator('li.msg .status.failed').count(), 0, 'nothing marked as not sent');
    assertNoErrors(alice, 'Alice');
    assertNoErrors(bob, 'Bob');
  } finally {
    await browser.close();
    await server.stop();
  }
});
