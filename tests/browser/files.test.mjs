// Encrypted file sharing in real Chromium: an image and a video shown inline, a plain
// file offered for saving, a multi-chunk file that arrives byte for byte, and the
// server's file size limit respected before anything is sent.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startServer } from '../harness.mjs';
import {
  artifactPath, assertNoErrors, enterRoom, launchBrowser, newPerson, waitForMembers, attach, fileCard, download,
} from './browser-harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Records a short WebM video in the page (MediaRecorder on a canvas) and returns its bytes. */
async function recordVideo(page) {
  const bytes = await page.evaluate(async () => {
    const canvas = document.createElement('canvas');
    canvas.width = 160;
    canvas.height = 120;
    const context = canvas.getContext('2d');
    const recorder = new MediaRecorder(canvas.captureStream(25), { mimeType: 'video/webm' });
    const parts = [];
    recorder.addEventListener('dataavailable', (event) => parts.push(event.data));
    const stopped = new Promise((resolve) => recorder.addEventListener('stop', resolve));
    recorder.start();
    for (let frame = 0; frame < 25; frame++) {
      context.fillStyle = `hsl(${frame * 14}, 80%, 50%)`;
      context.fillRect(0, 0, 160, 120);
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    recorder.stop();
    await stopped;
    return Array.from(new Uint8Array(await new Blob(parts).arrayBuffer()));
  });
  return Buffer.from(bytes);
}

test('images and video show inline, other files can be saved, and bytes arrive intact', async () => {
  const alice = await newPerson(browser);
  await enterRoom(alice, server.url, 'Alice');
  const bob = await newPerson(browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);

  // An image: a PNG screenshot of part of the page itself.
  const png = await alice.page.locator('.topbar').screenshot();
  await attach(alice.page, 'picture.png', 'image/png', png);
  const imageCard = fileCard(bob.page, 'picture.png');
  await imageCard.locator('img.preview').waitFor();
  await bob.page.waitForFunction(() => (document.querySelector('li.msg.file img.preview')?.naturalWidth ?? 0) > 0);
  assert.match(await imageCard.locator('img.preview').getAttribute('src'), /^blob:/);
  assert.match(await imageCard.locator('.file-status').textContent(), /checksum verified/);
  assert.equal(sha256(await download(bob.page, imageCard)), sha256(png), 'the saved image is byte for byte the original');
  await fileCard(alice.page, 'picture.png').locator('.file-status', { hasText: 'Sent' }).waitFor();

  // A video, recorded on the spot.
  const webm = await recordVideo(alice.page);
  assert.ok(webm.length > 1000, 'a video was recorded');
  await attach(alice.page, 'clip.webm', 'video/webm', webm);
  const videoCard = fileCard(bob.page, 'clip.webm');
  await videoCard.locator('video.preview').waitFor();
  await bob.page.waitForFunction(() => {
    const video = document.querySelector('li.msg.file video.preview');
    return video !== null && video.readyState >= 1 && video.videoWidth === 160;
  });

  // A plain file: no preview, a Save button, the same bytes.
  await attach(alice.page, 'notes.txt', 'text/plain', Buffer.from('meet at the north entrance\n'));
  const textCard = fileCard(bob.page, 'notes.txt');
  await textCard.getByRole('link', { name: 'Save' }).waitFor();
  assert.equal(await textCard.locator('.file-media > *').count(), 0);
  assert.equal((await download(bob.page, textCard)).toString(), 'meet at the north entrance\n');

  // Several chunks (256 KiB each), sent in a window of acks.
  const big = randomBytes(1_300_000);
  await attach(bob.page, 'data.bin', 'application/octet-stream', big);
  const bigCard = fileCard(alice.page, 'data.bin');
  await bigCard.getByRole('link', { name: 'Save' }).waitFor({ timeout: 30_000 });
  assert.equal(sha256(await download(alice.page, bigCard)), sha256(big), 'a multi-chunk file arrives intact');
  await fileCard(bob.page, 'data.bin').locator('.file-status', { hasText: 'Sent' }).waitFor();

  await bob.page.screenshot({ path: artifactPath('files.png') });
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});

test('a file over the server limit is refused before anything is sent', async () => {
  // 2 chunks of at most 64 KiB: the largest file is 2 × (65536 − 16 tag bytes) = 131040 bytes.
  const limited = await startServer(['--max-chunk-bytes', '65536', '--max-file-chunks', '2']);
  try {
    const alice = await newPerson(browser);
    await enterRoom(alice, limited.url, 'Alice');
    const bob = await newPerson(browser);
    await enterRoom(bob, alice.page.url(), 'Bob');
    await waitForMembers(alice.page, 2);
    await attach(alice.page, 'too-big.bin', 'application/octet-stream', randomBytes(200_000));
    const card = fileCard(alice.page, 'too-big.bin');
    assert.match(await card.locator('.file-status.error').textContent(), /Not sent: larger than this server accepts \(up to 128 KiB\)/);
    await bob.page.waitForTimeout(500);
    assert.equal(await bob.page.locator('li.msg.file').count(), 0, 'nothing was announced');
    assertNoErrors(alice, 'Alice');
    await alice.context.close();
    await bob.context.close();
  } finally {
    await limited.stop();
  }
});
