// TLS end to end: the server with a certificate made by this test; Chromium trusts exactly
// that key (--ignore-certificate-errors-spki-list, nothing else is relaxed) and two people
// chat over https and wss. (The Rust client over https is in tests/cli/json.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer } from '../harness.mjs';
import {
  assertNoErrors, enterRoom, launchBrowser, newPerson, say, waitForMembers, waitForMessage,
} from './browser-harness.mjs';

let dir;
let server;
let browser;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'streamchat-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const spki = createPublicKey(readFileSync(cert)).export({ type: 'spki', format: 'der' });
  const pin = createHash('sha256').update(spki).digest('base64');
  server = await startServer(['--tls-cert', cert, '--tls-key', key]);
  browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${pin}`]);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('two people chat over https and wss with the server\'s own certificate', async () => {
  assert.match(server.url, /^https:\/\//);
  const url = `https://localhost:${server.port}/`;
  const alice = await newPerson(browser);
  await enterRoom(alice, url, 'Alice');
  assert.ok(await alice.page.evaluate(() => window.isSecureContext && location.protocol === 'https:'));
  const bob = await newPerson(browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  await say(alice.page, 'over TLS');
  await waitForMessage(bob.page, 'Alice', 'over TLS');
  await say(bob.page, 'and back');
  await waitForMessage(alice.page, 'Bob', 'and back');
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
  await alice.context.close();
  await bob.context.close();
});
