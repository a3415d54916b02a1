// Encrypted media in real Chromium, with files made by the test (Debian's ffmpeg): a PNG
// shown at its true size, a WebM and an MP4 that play for their true duration, a video
// that starts playing before its last chunk has arrived, and what a receiver does with
// chunks that are altered in transit or slipped in by another member.
//
// Alice's Socket.IO WebSocket is routed through the test (Playwright's routeWebSocket), so
// the test stands where the server or the network stands: it can hold back, alter or
// forward each chunk she sends, which makes the timing-dependent cases deterministic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  createCipheriv, createDecipheriv, createHash, generateKeyPairSync, hkdfSync, randomBytes, sign,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { io } from 'socket.io-client';
import { nextEvent } from '../harness.mjs';
import {
  artifactPath, assertNoErrors, enterRoom, newPerson, waitForMembers, attach, fileCard, download, serverAndBrowser
} from './browser-harness.mjs';

const run = promisify(execFile);
/** The client's plaintext chunk size for files up to 64 MiB with the server's default limits. */
const CHUNK = 256 * 1024;

const env = serverAndBrowser({ workDir: 'streamchat-media-' });

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** Runs ffmpeg with a lavfi source; returns the bytes of `name`. */
async function ffmpeg(name, args) {
  const out = path.join(env.work, name);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, out]);
  return readFile(out);
}

const testsrc = (seconds, extra = '') => ['-f', 'lavfi', '-i', `testsrc=duration=${seconds}:size=320x240:rate=25${extra}`];
/** A 2 s VP8 WebM. */
const makeWebm = () => ffmpeg('clip.webm', [...testsrc(2), '-c:v', 'libvpx', '-b:v', '200k', '-deadline', 'realtime', '-cpu-used', '8']);
/** A 2 s H.264 MP4, index first. */
const makeMp4 = () => ffmpeg('clip.mp4', [...testsrc(2), '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart']);
/** An 8 s VP8 WebM of about 1.8 MB (noise keeps the bitrate up: 7 chunks of 256 KiB), a cluster per second. */
const makeLongWebm = () => ffmpeg('long.webm', [
  ...testsrc(8, ',noise=alls=30:allf=t+u'), '-c:v', 'libvpx', '-b:v', '2M', '-minrate', '2M', '-maxrate', '2M', '-g', '25',
  '-deadline', 'realtime', '-cpu-used', '8', '-cluster_time_limit', '1000', '-an',
]);

/**
 * Routes `page`'s Socket.IO WebSocket through the test. Every `chunk` the page sends (a
 * binary event: a text frame `451-<ack>["chunk",{…,"data":{"_placeholder":true,…}}]`
 * followed by one binary frame) is handed to `onChunk({file, seq, data, forward})`;
 * `forward(data)` sends it on, with `data` possibly altered. Everything else passes.
 * Must be called before the page opens StreamChat.
 */
async function interceptChunks(page, onChunk) {
  await page.routeWebSocket((url) => url.pathname.startsWith('/socket.io/'), (ws) => {
    const upstream = ws.connectToServer();
    let header = null;
    ws.onMessage((message) => {
      if (header !== null) {
        const { text, payload } = header;
        header = null;
        const data = Buffer.from(message);
        onChunk({
          file: payload.file,
          seq: payload.seq,
          data,
          forward: (bytes = data) => { upstream.send(text); upstream.send(bytes); },
        });
        return;
      }
      if (typeof message === 'string') {
        const binaryEvent = /^451-\d*(\[.*)$/s.exec(message);
        if (binaryEvent !== null) {
          const [event, payload] = JSON.parse(binaryEvent[1]);
          if (event === 'chunk') {
            header = { text: message, payload };
            return;
          }
        }
      }
      upstream.send(message);
    });
  });
}

/** Alice (whose chunks pass through `onChunk`, if given) and Bob in a new room. */
async function aliceAndBob(onChunk) {
  const alice = await newPerson(env.browser);
  if (onChunk !== undefined) await interceptChunks(alice.page, onChunk);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  return { alice, bob };
}

async function close(...people) {
  for (const person of people) await person.context.close();
}

/** Plays the video in `card` muted; resolves with its duration once currentTime passed `seconds`. */
async function playUntil(card, seconds, timeout = 15_000) {
  const video = card.locator('video.preview');
  await video.evaluate(async (element) => {
    element.muted = true;
    await element.play();
  });
  await video.evaluate((element, [target, ms]) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`currentTime stayed at ${element.currentTime}`)), ms);
    const check = () => {
      if (element.currentTime > target) {
        clearTimeout(timer);
        resolve();
      } else {
        requestAnimationFrame(check);
      }
    };
    check();
  }), [seconds, timeout]);
}

async function videoState(card) {
  return card.locator('video.preview').evaluate((element) => ({
    duration: element.duration, width: element.videoWidth, height: element.videoHeight, error: element.error?.code ?? null,
    streaming: element.dataset.streaming === 'true',
  }));
}

async function waitForMetadata(card) {
  await card.locator('video.preview').evaluate((element) => new Promise((resolve, reject) => {
    if (element.readyState >= 1 && Number.isFinite(element.duration)) return resolve();
    const timer = setTimeout(() => reject(new Error('no metadata')), 10_000);
    element.addEventListener('durationchange', () => {
      if (Number.isFinite(element.duration)) { clearTimeout(timer); resolve(); }
    });
    element.addEventListener('loadedmetadata', () => {
      if (Number.isFinite(element.duration)) { clearTimeout(timer); resolve(); }
    });
    element.addEventListener('error', () => { clearTimeout(timer); reject(new Error(`video error ${element.error?.code}`)); });
  }));
}

test('a PNG made by the test shows at its true size and saves byte for byte', async () => {
  const png = await ffmpeg('picture.png', ['-f', 'lavfi', '-i', 'testsrc=size=173x97', '-frames:v', '1']);
  const { alice, bob } = await aliceAndBob();
  await attach(alice.page, 'picture.png', 'image/png', png);
  const card = fileCard(bob.page, 'picture.png');
  const img = card.locator('img.preview');
  await img.waitFor();
  await bob.page.waitForFunction((element) => element.complete && element.naturalWidth > 0, await img.elementHandle());
  assert.deepEqual(await img.evaluate((element) => [element.naturalWidth, element.naturalHeight]), [173, 97]);
  assert.match(await card.locator('.file-status').textContent(), /checksum verified/);
  assert.equal(sha256(await download(bob.page, card)), sha256(png));
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await close(alice, bob);
});

test('a WebM and an MP4 made with ffmpeg play for their true duration', async () => {
  const [webm, mp4] = [await makeWebm(), await makeMp4()];
  const { alice, bob } = await aliceAndBob();
  const h264 = await bob.page.evaluate(() => ({
    canPlay: document.createElement('video').canPlayType('video/mp4; codecs="avc1.42E01E"'),
    mse: MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E"'),
  }));
  console.log(`# this Chromium and H.264: canPlayType ${JSON.stringify(h264.canPlay)}, MediaSource ${h264.mse}`);

  for (const [name, type, bytes] of [['clip.webm', 'video/webm', webm], ['clip.mp4', 'video/mp4', mp4]]) {
    await attach(alice.page, name, type, bytes);
    const card = fileCard(bob.page, name);
    await card.getByRole('link', { name: 'Save' }).waitFor();
    assert.equal(sha256(await download(bob.page, card)), sha256(bytes), `${name} arrives intact`);
    if (type === 'video/mp4' && h264.canPlay === '') {
      // A Chromium without H.264: the file is offered for saving with a clear note.
      await card.locator('.file-note', { hasText: 'This browser cannot play this video; save it' }).waitFor();
      continue;
    }
    await waitForMetadata(card);
    const state = await videoState(card);
    assert.ok(Math.abs(state.duration - 2) < 0.1, `${name}: duration ${state.duration}`);
    assert.deepEqual([state.width, state.height], [320, 240], name);
    await playUntil(card, 0.5);
  }

  // A "video" this browser cannot decode is not shown as a broken player.
  await attach(alice.page, 'broken.mp4', 'video/mp4', randomBytes(5000));
  const broken = fileCard(bob.page, 'broken.mp4');
  await broken.locator('.file-note', { hasText: 'This browser cannot play this video; save it to open it with another app.' }).waitFor();
  assert.equal(await broken.locator('video').count(), 0);
  await broken.getByRole('link', { name: 'Save' }).waitFor();

  await bob.page.screenshot({ path: artifactPath('files-media.png') });
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await close(alice, bob);
});

test('a WebM starts playing before its last chunk has arrived', async () => {
  const webm = await makeLongWebm();
  const chunks = Math.ceil(webm.length / CHUNK);
  assert.ok(chunks >= 4, `the video spans ${chunks} chunks`);
  let releaseLast;
  const lastHeld = new Promise((resolve) => {
    releaseLast = resolve;
  });
  let lastSeen = false;
  const { alice, bob } = await aliceAndBob((chunk) => {
    if (chunk.seq !== chunks - 1) return chunk.forward();
    lastSeen = true;
    void lastHeld.then(() => chunk.forward());
  });
  await attach(alice.page, 'long.webm', 'video/webm', webm);
  const card = fileCard(bob.page, 'long.webm');
  await card.locator('video.preview[data-streaming]').waitFor();
  await playUntil(card, 1.5, 20_000);
  assert.ok(lastSeen, 'the last chunk was sent by Alice and is held back');
  assert.match(await card.locator('.file-status').textContent(), new RegExp(`Receiving… ${chunks - 1} of ${chunks} parts`));
  assert.equal(await card.getByRole('link', { name: 'Save' }).count(), 0, 'not complete yet');

  releaseLast();
  await card.locator('.file-status', { hasText: 'checksum verified' }).waitFor();
  await waitForMetadata(card);
  const state = await videoState(card);
  assert.equal(state.streaming, true, 'the same player goes on');
  assert.ok(Math.abs(state.duration - 8) < 0.2, `duration ${state.duration}`);
  assert.equal(state.error, null);
  assert.equal(sha256(await download(bob.page, card)), sha256(webm));
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await close(alice, bob);
});

test('a chunk altered in transit fails the file with a clear error and shows no media', async () => {
  const webm = await makeLongWebm();
  let altered = 0;
  let playing;
  const started = new Promise((resolve) => {
    playing = resolve;
  });
  // Chunk 2 is altered (one bit) and sent on once Bob's video has begun to play from chunks 0 and 1.
  const { alice, bob } = await aliceAndBob((chunk) => {
    if (chunk.seq !== 2) return chunk.forward();
    const data = Buffer.from(chunk.data);
    data[100] ^= 0x01;
    altered++;
    void started.then(() => chunk.forward(data));
  });
  await attach(alice.page, 'tampered.webm', 'video/webm', webm);
  const card = fileCard(bob.page, 'tampered.webm');
  await card.locator('video.preview[data-streaming]').waitFor();
  playing();
  await card.locator('.file-status.error').waitFor();
  assert.equal(altered, 1);
  assert.equal(await card.locator('.file-status').textContent(),
    'This file could not be received: a part of it was altered in transit or is out of place.');
  assert.equal(await card.locator('.file-media > *').count(), 0, 'no video (not even the one that began to play)');
  assert.equal(await card.getByRole('link', { name: 'Save' }).count(), 0, 'nothing to save');
  // Later chunks change nothing.
  await fileCard(alice.page, 'tampered.webm').locator('.file-status', { hasText: 'Sent' }).waitFor();
  await bob.page.waitForTimeout(300);
  assert.equal(await card.locator('.file-media > *').count(), 0);
  assert.match(await card.locator('.file-status').textContent(), /altered in transit/);
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await close(alice, bob);
});

// ---- Another member injecting chunks -------------------------------------------------------

/** The parts of docs/crypto.md an insider needs (§3, §5, §9), written with node:crypto. */
class Insider {
  constructor(secret) {
    this.roomBytes = Buffer.from(hkdfSync('sha256', secret, 'streamchat/v1', 'room-id', 16));
    this.messageKey = Buffer.from(hkdfSync('sha256', secret, 'streamchat/v1', 'message-key', 32));
    this.roomId = this.roomBytes.toString('base64url');
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    this.publicKey = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
    this.privateKey = privateKey;
  }

  #member(member) {
    const bytes = Buffer.from(member, 'utf8');
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  }

  /** A sealed profile for `member`, signed by this insider's key. */
  profile(member, name) {
    const body = Buffer.from(JSON.stringify({ type: 'profile', name, key: this.publicKey.toString('base64url'), sent_at: Date.now() }));
    const signature = sign(null, Buffer.concat([Buffer.from('streamchat/v1/sig'), this.roomBytes, this.#member(member), body]), this.privateKey);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.messageKey, iv);
    cipher.setAAD(Buffer.concat([Buffer.from('streamchat/v1'), this.roomBytes, this.#member(member)]));
    const sealed = Buffer.concat([Buffer.from([1]), iv, cipher.update(Buffer.concat([signature, body])), cipher.final(), cipher.getAuthTag()]);
    return sealed.toString('base64url');
  }

  /** The body of a sealed message from `member` (its signature is not checked here). */
  open(member, sealed) {
    const decipher = createDecipheriv('aes-256-gcm', this.messageKey, sealed.subarray(1, 13));
    decipher.setAAD(Buffer.concat([Buffer.from('streamchat/v1'), this.roomBytes, this.#member(member)]));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plaintext = Buffer.concat([decipher.update(sealed.subarray(13, sealed.length - 16)), decipher.final()]);
    return JSON.parse(plaintext.subarray(64).toString('utf8'));
  }
}

/** Chunk `seq` of an announced file, encrypted with its real key: it passes STREAM. */
function forgeChunk(body, seq, plaintext) {
  const nonce = Buffer.alloc(12);
  Buffer.from(body.nonce_prefix, 'base64url').copy(nonce, 0);
  nonce.writeUInt32BE(seq, 7);
  nonce[11] = seq === body.chunks - 1 ? 1 : 0;
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(body.key, 'base64url'), nonce);
  cipher.setAAD(Buffer.from('streamchat/v1/chunk'));
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

test('chunks another member sends under the same file id and seq are not taken for the sender’s', async () => {
  const file = randomBytes(3 * CHUNK - 1000);
  let injected = null;
  const alice = await newPerson(env.browser);
  // Alice's chunk 1 waits until the insider's forged chunk 1 has been relayed to Bob.
  await interceptChunks(alice.page, (chunk) => {
    if (chunk.seq !== 1) return chunk.forward();
    void injected.then(() => chunk.forward());
  });
  await enterRoom(alice, env.server.url, 'Alice');

  // An insider: knows the room secret, joins with a valid profile, reads the announcement
  // (and so the file key), and sends a chunk for Alice's file id that decrypts correctly.
  const insider = new Insider(Buffer.from(new URL(alice.page.url()).hash.slice(1), 'base64url'));
  const socket = io(env.server.url, { transports: ['websocket'], reconnection: false });
  await nextEvent(socket, 'connect');
  const joined = await socket.timeout(5000).emitWithAck('join', { room: insider.roomId, profile: insider.profile(socket.id, 'Mallory') });
  assert.equal(joined.ok, true, JSON.stringify(joined));
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(bob.page, 3);

  injected = nextEvent(socket, 'msg', {
    ms: 15_000,
    pred: (msg) => msg.from !== socket.id && insider.open(msg.from, Buffer.from(msg.data)).type === 'file',
  }).then(async (msg) => {
    const body = insider.open(msg.from, Buffer.from(msg.data));
    assert.equal(body.chunks, 3);
    const forged = forgeChunk(body, 1, randomBytes(body.chunk_size));
    const ack = await socket.timeout(5000).emitWithAck('chunk', { room: insider.roomId, file: body.id, seq: 1, data: forged });
    assert.equal(ack.ok, true, JSON.stringify(ack));
  });
  await attach(alice.page, 'contract.bin', 'application/octet-stream', file);
  await injected;

  const card = fileCard(bob.page, 'contract.bin');
  await card.locator('.file-status', { hasText: 'checksum verified' }).waitFor();
  assert.equal(sha256(await download(bob.page, card)), sha256(file), 'Bob has Alice’s bytes, not the forged chunk');
  // The server names who sent a chunk: Mallory's went nowhere near Alice's file.
  assert.match(await bob.page.locator('li.alert').filter({ hasText: 'Mallory' }).last().textContent(),
    /Parts of a file from Mallory arrived without its announcement/);
  socket.disconnect();
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await close(alice, bob);
});
