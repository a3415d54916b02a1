// Large encrypted files in real Chromium with the server's default limits (1 MiB sealed
// chunks, 256 per file): a 50 MiB file arrives with the right SHA-256, and a file over
// 64 MiB — which 256 KiB chunks could not carry in 256 — is sent in larger chunks. The
// files are written to a temporary folder (Playwright passes paths, not 50 MiB buffers)
// and hashed while streaming them from disk, so the test itself stays small in memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  assertNoErrors, enterRoom, newPerson, waitForMembers, fileCard, serverAndBrowser
} from './browser-harness.mjs';

const MiB = 1024 * 1024;

const env = serverAndBrowser({ workDir: 'streamchat-large-' });

/** Writes `size` random bytes to `name` in 1 MiB pieces; resolves with its path and SHA-256. */
async function randomFile(name, size) {
  const file = path.join(env.work, name);
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  for (let written = 0; written < size; written += MiB) {
    const piece = randomBytes(Math.min(MiB, size - written));
    hash.update(piece);
    if (!out.write(piece)) await new Promise((resolve) => out.once('drain', resolve));
  }
  await new Promise((resolve, reject) => out.end((error) => (error ? reject(error) : resolve())));
  return { file, sha256: hash.digest('hex') };
}

async function hashFile(file) {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(file)) hash.update(piece);
  return hash.digest('hex');
}

/** Alice sends the file at `file`; resolves with the SHA-256 of what Bob saves and the parts Bob saw. */
async function sendAndSave(alice, bob, file) {
  const name = path.basename(file);
  await alice.page.locator('.composer input[type=file]').setInputFiles(file);
  const card = fileCard(bob.page, name);
  // The part count Bob shows while receiving tells the chunk size Alice chose.
  const parts = await bob.page.waitForFunction((fileName) => {
    for (const item of document.querySelectorAll('li.msg.file')) {
      if (item.querySelector('.file-name')?.textContent !== fileName) continue;
      const match = /Receiving… \d+ of (\d+) parts/.exec(item.querySelector('.file-status')?.textContent ?? '');
      if (match !== null) return Number(match[1]);
    }
    return null;
  }, name, { timeout: 60_000, polling: 50 });
  const total = await parts.jsonValue();
  await card.getByRole('link', { name: 'Save' }).waitFor({ timeout: 180_000 });
  assert.match(await card.locator('.file-status').textContent(), /checksum verified/);
  const [download] = await Promise.all([bob.page.waitForEvent('download'), card.getByRole('link', { name: 'Save' }).click()]);
  const saved = await download.path();
  const sha256 = await hashFile(saved);
  await download.delete();
  await fileCard(alice.page, name).locator('.file-status', { hasText: 'Sent' }).waitFor({ timeout: 60_000 });
  return { sha256, parts: total };
}

test('a 50 MiB file arrives byte for byte, and a 72 MiB one in larger chunks', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);

  const fifty = await randomFile('fifty.bin', 50 * MiB);
  const first = await sendAndSave(alice, bob, fifty.file);
  assert.equal(first.sha256, fifty.sha256, 'the 50 MiB file arrives with the right SHA-256');
  assert.equal(first.parts, 200, '50 MiB in 256 KiB chunks');
  await rm(fifty.file);

  // Over 64 MiB: ceil(72 MiB / 256) = 288 KiB, rounded up to 320 KiB → 231 chunks.
  const large = await randomFile('seventy-two.bin', 72 * MiB);
  const second = await sendAndSave(alice, bob, large.file);
  assert.equal(second.sha256, large.sha256, 'the 72 MiB file arrives with the right SHA-256');
  assert.equal(second.parts, Math.ceil((72 * MiB) / (320 * 1024)));
  await rm(large.file);

  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});

test('a file just over the default limit is refused at once, with the limit shown', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  // 256 sealed chunks of 1 MiB carry 256 × (1 MiB − 16) bytes of plaintext; 256 MiB does not fit.
  const { file } = await randomFile('too-big.bin', 256 * MiB);
  await alice.page.locator('.composer input[type=file]').setInputFiles(file);
  const card = fileCard(alice.page, 'too-big.bin');
  assert.equal(await card.locator('.file-status.error').textContent(),
    'Not sent: larger than this server accepts (up to 256 MiB, 268,431,360 bytes).');
  await bob.page.waitForTimeout(500);
  assert.equal(await bob.page.locator('li.msg.file').count(), 0, 'nothing was announced');
  await rm(file);
  assertNoErrors(alice, 'Alice');
  await alice.context.close();
  await bob.context.close();
});
