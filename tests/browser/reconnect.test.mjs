// Resilience: the server restarts mid-chat on the same port. Both pages notice, show it,
// reconnect by themselves, rejoin with a new member id and a re-sealed profile, and chat
// again. A message typed while offline is queued and sent after the reconnection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../harness.mjs';
import {
  artifactPath, assertNoErrors, enterRoom, memberList, newPerson, say, waitConnected, waitForMembers, waitForMessage,
  serverAndBrowser,
} from './browser-harness.mjs';

const env = serverAndBrowser();

/** The page's current member id, as shown on its own entry in the online list. */
async function ownMemberId(page) {
  return page.locator('.member-list .member:has(.you)').getAttribute('data-member');
}

test('both pages reconnect by themselves after a server restart and chat again', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const bob = await newPerson(env.browser);
  await enterRoom(bob, alice.page.url(), 'Bob');
  await waitForMembers(alice.page, 2);
  const fingerprintsBefore = await memberList(alice.page);
  const aliceIdBefore = await ownMemberId(alice.page);
  await say(alice.page, 'before the restart');
  await waitForMessage(bob.page, 'Alice', 'before the restart');

  const { port } = env.server;
  await env.server.stop();
  for (const person of [alice, bob]) {
    await person.page.locator('.conn-status[data-tone=bad]').waitFor();
    assert.match(await person.page.locator('.conn-status').textContent(), /Offline/);
  }

  // Typed while offline: queued and marked as such.
  await say(alice.page, 'typed while offline');
  const queued = alice.page.locator('li.msg', { hasText: 'typed while offline' });
  assert.match(await queued.locator('.status').textContent(), /Waiting for the connection/);

  env.server = await startServer([], { port });
  assert.equal(env.server.port, port);
  await waitConnected(alice.page, 30_000);
  await waitConnected(bob.page, 30_000);
  await queued.locator('.status').waitFor({ state: 'detached', timeout: 15_000 });

  // New connection, new member id; the same person (same key, same fingerprint) for the others.
  await waitForMembers(alice.page, 2, 30_000);
  await waitForMembers(bob.page, 2, 30_000);
  assert.notEqual(await ownMemberId(alice.page), aliceIdBefore, 'a new socket id after reconnecting');
  assert.deepEqual(
    (await memberList(alice.page)).map((m) => m.fingerprint).sort(),
    fingerprintsBefore.map((m) => m.fingerprint).sort(),
    'fingerprints survive the reconnection',
  );

  await say(alice.page, 'after the restart, from Alice');
  await waitForMessage(bob.page, 'Alice', 'after the restart, from Alice');
  await say(bob.page, 'after the restart, from Bob');
  await waitForMessage(alice.page, 'Bob', 'after the restart, from Bob');
  assert.ok(await alice.page.locator('li.alert', { hasText: /You rejoined the chat at/ }).count() >= 1);

  // Messages from before the restart are still on screen (the page kept them; nothing was stored).
  await waitForMessage(bob.page, 'Alice', 'before the restart');

  await alice.page.screenshot({ path: artifactPath('after-reconnect.png') });

  // The only console errors allowed are the browser's own reports of refused WebSocket connections while the server was down.
  for (const person of [alice, bob]) {
    person.errors = person.errors.filter((error) => !/WebSocket connection to .* failed/.test(error));
    assertNoErrors(person, 'after restart');
  }
  await alice.context.close();
  await bob.context.close();
});
