// Proof of no plaintext: two people chat across two nodes (presence in Redis, room events
// through a Kafka-protocol broker) and share a file, while recording proxies capture every
// byte each node receives and sends, everything Redis is told and answers, and everything
// that passes to and from the broker. The marker text, both names, the link secret and the
// file's bytes appear in none of it, in any common encoding.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { freePort, recordingProxy, startKafka, startRedis, startServer } from '../harness.mjs';
import { stopServer } from '../node/helpers.mjs';
import {
  assertNoErrors, attach, encodings, enterRoom, fileCard, launchBrowser, newPerson, say, waitForMembers, waitForMessage,
} from './browser-harness.mjs';

const tag = randomBytes(4).toString('hex');
const ALICE = `Aurelia Marker ${tag}`;
const BOB = `Benedikt Marker ${tag}`;
const TEXT = `the marker text ${tag}: meet under the old clock`;
const FILE = randomBytes(300_000);

const started = [];
let browser;
let capture;

before(async () => {
  // Each part is registered as soon as it runs, so that `after` stops it even when a later
  // one fails to start (a missing broker must fail this file, not hang it).
  capture = {};
  const redis = await startRedis();
  started.push(redis);
  capture.redisTap = await recordingProxy(redis.port);
  const kafkaTapPort = await freePort();
  const kafka = await startKafka({ advertisedPort: kafkaTapPort });
  started.push(kafka);
  capture.kafkaTap = await recordingProxy(kafka.port, { port: kafkaTapPort });
  const args = ['--redis-url', `redis://127.0.0.1:${capture.redisTap.port}`, '--kafka-brokers', `127.0.0.1:${capture.kafkaTap.port}`];
  for (const name of ['aTap', 'bTap']) {
    const node = await startServer(args, { timeoutMs: 20_000 });
    started.unshift(node); // nodes stop before Redis and the broker
    capture[name] = await recordingProxy(node.port);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const tap of Object.values(capture ?? {})) await tap.close();
  for (const s of started) await (s.proc && s.url ? stopServer(s) : s.stop());
});

test('nothing the nodes, Redis or the broker see contains the text, the names or the file', async () => {
  const { aTap, bTap, redisTap, kafkaTap } = capture;
  const alice = await newPerson(browser);
  await enterRoom(alice, `http://127.0.0.1:${aTap.port}/`, ALICE);
  const link = alice.page.url();
  const bob = await newPerson(browser);
  await enterRoom(bob, `http://127.0.0.1:${bTap.port}/${new URL(link).hash}`, BOB);
  await waitForMembers(alice.page, 2);
  await waitForMembers(bob.page, 2);

  await say(alice.page, TEXT);
  await waitForMessage(bob.page, ALICE, TEXT);
  await attach(alice.page, `report-${tag}.bin`, 'application/octet-stream', FILE);
  const card = fileCard(bob.page, `report-${tag}.bin`);
  await card.getByRole('link', { name: 'Save' }).waitFor({ timeout: 30_000 });
  await say(bob.page, `${TEXT} (acknowledged)`);
  await waitForMessage(alice.page, BOB, `${TEXT} (acknowledged)`);

  const captures = { 'node A': aTap.bytes(), 'node B': bTap.bytes(), Redis: redisTap.bytes(), Kafka: kafkaTap.bytes() };
  // The captures are real: the file's ciphertext crossed the broker, presence crossed Redis.
  assert.ok(captures.Kafka.length > FILE.length, `broker traffic ${captures.Kafka.length} bytes`);
  assert.ok(captures.Redis.includes(':members'), 'presence went through Redis');
  assert.ok(captures['node A'].length > FILE.length && captures['node B'].length > FILE.length);

  const words = [ALICE, BOB, TEXT, `report-${tag}`, tag, 'Aurelia', 'Benedikt', 'old clock'];
  const secret = new URL(link).hash.slice(1);
  for (const [where, bytes] of Object.entries(captures)) {
    for (const word of words) {
      for (const needle of encodings(word)) {
        assert.equal(bytes.indexOf(needle), -1, `"${word}" reached ${where} as ${needle.toString().slice(0, 40)}`);
      }
    }
    assert.equal(bytes.indexOf(Buffer.from(secret)), -1, `the link secret reached ${where}`);
    for (let offset = 0; offset + 48 <= FILE.length; offset += 25_000) {
      const slice = FILE.subarray(offset, offset + 48);
      assert.equal(bytes.indexOf(slice), -1, `file bytes at ${offset} reached ${where} in the clear`);
      assert.equal(bytes.indexOf(Buffer.from(slice.toString('base64url'))), -1, `file bytes at ${offset} reached ${where} as base64url`);
    }
  }
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});
