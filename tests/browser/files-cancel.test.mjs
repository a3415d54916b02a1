// A file in progress, seen by the others: when its sender cancels it, receivers say
// "Cancelled by the sender" at once (a sealed `file-cancel`, not a 30 s stall timeout),
// and someone who joins while a file is being sent sees one plain line, no warning, while
// those who were there receive the file intact. The server paces each connection to
// 1 MiB/s so that a file of a few MiB takes long enough to act in the middle of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  artifactPath, assertNoErrors, attach, download, enterRoom, fileCard, newPerson, serverAndBrowser, waitForMembers,
} from './browser-harness.mjs';

const MiB = 1024 * 1024;
const env = serverAndBrowser({ serverArgs: ['--bytes-per-second', String(MiB), '--byte-burst', String(MiB)] });

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Waits until `page` shows the file `name` as receiving with at least `parts` parts; returns the total. */
async function receiving(page, name, parts, timeout = 30_000) {
  const handle = await page.waitForFunction(({ fileName, atLeast }) => {
    for (const item of document.querySelectorAll('li.msg.file')) {
      if (item.querySelector('.file-name')?.textContent !== fileName) continue;
      const match = /Receiving… (\d+) of (\d+) parts/.exec(item.querySelector('.file-status')?.textContent ?? '');
      if (match !== null && Number(match[1]) >= atLeast) return Number(match[2]);
    }
    return null;
  }, { fileName: name, atLeast: parts }, { timeout, polling: 50 });
  return handle.jsonValue();
}

/** What someone sees that reads as a problem: warning alerts, failed files, error statuses. */
async function warnings(page) {
  return page.locator('li.alert.warning, li.msg.failed, .file-status.error, .status.failed').allTextContents();
}

async function people(...names) {
  const [first, ...others] = names;
  const host = await newPerson(env.browser);
  await enterRoom(host, env.server.url, first);
  const guests = [];
  for (const name of others) {
    const guest = await newPerson(env.browser);
    await enterRoom(guest, host.page.url(), name);
    guests.push(guest);
  }
  await waitForMembers(host.page, names.length);
  return [host, ...guests];
}

test('when the sender cancels a file, the others see "Cancelled by the sender" within seconds', async () => {
  const [alice, bob] = await people('Alice', 'Bob');
  // 12 MiB at 1 MiB/s: about 12 s if it were sent to the end.
  await attach(alice.page, 'holiday.bin', 'application/octet-stream', randomBytes(12 * MiB));
  const total = await receiving(bob.page, 'holiday.bin', 2);
  assert.equal(total, 48, '12 MiB in 256 KiB parts');

  const aliceCard = fileCard(alice.page, 'holiday.bin');
  await aliceCard.getByRole('button', { name: 'Cancel' }).click();
  const cancelledAt = Date.now();
  const bobCard = fileCard(bob.page, 'holiday.bin');
  await bobCard.locator('.file-status', { hasText: 'Cancelled by the sender' }).waitFor({ timeout: 5000 });
  const seconds = (Date.now() - cancelledAt) / 1000;
  assert.ok(seconds < 5, `Bob saw the cancel after ${seconds} s`);
  await aliceCard.locator('.file-status', { hasText: 'Cancelled' }).waitFor({ timeout: 5000 });

  // Parts still on their way change nothing; nothing reads as an error, nothing can be saved.
  await bob.page.waitForTimeout(1500);
  assert.match(await bobCard.locator('.file-status').textContent(), /^Cancelled by the sender \(\d+ of 48 parts had arrived\)\.$/);
  assert.equal(await bobCard.getByRole('link', { name: 'Save' }).count(), 0, 'nothing to save');
  assert.equal(await bobCard.locator('progress').count(), 0, 'no progress bar left');
  assert.deepEqual(await warnings(bob.page), [], 'Bob sees no warning or error');
  assert.deepEqual(await warnings(alice.page).then((found) => found.filter((text) => !/Slow down/.test(text))), [],
    'Alice sees no error (the server pacing her is expected)');

  // The room goes on: a small file after the cancelled one arrives.
  await attach(alice.page, 'after.txt', 'text/plain', Buffer.from('still here\n'));
  const after = fileCard(bob.page, 'after.txt');
  await after.getByRole('link', { name: 'Save' }).waitFor({ timeout: 15_000 });
  assert.equal((await download(bob.page, after)).toString(), 'still here\n');
  await bob.page.screenshot({ path: artifactPath('files-cancel.png') });

  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});

test('someone who joins while a file is being sent sees one plain line, no warning; the others get the file', async () => {
  const [alice, bob] = await people('Alice', 'Bob');
  const file = randomBytes(8 * MiB);
  await attach(alice.page, 'report.bin', 'application/octet-stream', file);
  const total = await receiving(bob.page, 'report.bin', 2);
  assert.equal(total, 32, '8 MiB in 256 KiB parts');

  const carol = await newPerson(env.browser);
  await enterRoom(carol, alice.page.url(), 'Carol');
  await waitForMembers(carol.page, 3);

  const bobCard = fileCard(bob.page, 'report.bin');
  await bobCard.getByRole('link', { name: 'Save' }).waitFor({ timeout: 60_000 });
  assert.match(await bobCard.locator('.file-status').textContent(), /checksum verified/);
  assert.equal(sha256(await download(bob.page, bobCard)), sha256(file), 'Bob has the file byte for byte');
  await fileCard(alice.page, 'report.bin').locator('.file-status', { hasText: 'Sent' }).waitFor({ timeout: 15_000 });

  // Carol joined with most of the file still to come (the server paces Alice): she received
  // its later parts and dropped them, with one plain line for the whole file.
  const line = carol.page.locator('li.alert', { hasText: 'A file was being sent before you joined' });
  await carol.page.waitForTimeout(500);
  assert.equal(await line.count(), 1, 'one line for the file, however many parts');
  assert.equal(await line.getAttribute('class'), 'alert file-before-join', 'a plain line, not a warning');
  assert.equal((await line.textContent()).trim(), 'A file was being sent before you joined.');
  assert.deepEqual(await warnings(carol.page), [], 'Carol sees no warning or error');
  await carol.page.screenshot({ path: artifactPath('files-joined-mid-transfer.png') });
  assert.equal(await carol.page.locator('li.msg.file').count(), 0, 'Carol has no card for a file she never saw announced');
  assert.doesNotMatch(await carol.page.locator('.timeline').textContent(), /without its announcement|could not be received|stopped before/);
  assert.deepEqual(await warnings(bob.page), [], 'Bob sees no warning or error');

  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  assertNoErrors(carol, 'Carol');
  await alice.context.close();
  await bob.context.close();
  await carol.context.close();
});
