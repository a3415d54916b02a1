// What the server (or anyone on its side) sees: a plain socket.io-client that knows only
// the room id joins the room like a member would and records every byte it receives
// while two people chat in real browsers. Neither their messages nor their names may
// appear in those bytes, in any common encoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync, randomBytes } from 'node:crypto';
import { io } from 'socket.io-client';
import {
  assertNoErrors, enterRoom, newPerson, say, waitForAlert, waitForMembers, waitForMessage,
  encodings, serverAndBrowser,
} from './browser-harness.mjs';

const ALICE = 'Alicia Zebrafinch';
const BOB = 'Bartholomew Quux';
const SECRETS = ['the eagle lands at midnight, bring the blue folder', 'understood: platform nine, quarter past'];

const env = serverAndBrowser();

/** The room id a client derives from the link secret (docs/crypto.md §3), computed independently with node:crypto. */
function roomIdFromLink(link) {
  const secret = Buffer.from(new URL(link).hash.slice(1), 'base64url');
  assert.equal(secret.length, 32);
  return Buffer.from(hkdfSync('sha256', secret, 'streamchat/v1', 'room-id', 16)).toString('base64url');
}

test('a member-like observer with only the room id sees traffic but no names and no text', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, ALICE);
  const link = alice.page.url();
  const room = roomIdFromLink(link);

  const received = [];
  const events = [];
  const observer = io(env.server.url, { transports: ['websocket'], reconnection: false });
  observer.io.on('open', () => {
    observer.io.engine.on('packet', (packet) => {
      if (typeof packet.data === 'string') received.push(Buffer.from(packet.data, 'utf8'));
      else if (packet.data !== undefined) received.push(Buffer.from(packet.data));
    });
  });
  observer.onAny((event, payload) => events.push({ event, payload }));
  await new Promise((resolve, reject) => { observer.once('connect', resolve); observer.once('connect_error', reject); });

  const ack = await observer.timeout(5000).emitWithAck('join', { room, profile: randomBytes(120).toString('base64url') });
  assert.equal(ack.ok, true, JSON.stringify(ack));
  assert.equal(ack.members.length, 1, 'Alice is in the room');
  assert.match(ack.members[0].profile, /^[A-Za-z0-9_-]+$/, 'her profile is an opaque base64url blob');

  // Alice's client cannot verify the observer's fake profile: it warns and ignores it.
  await waitForAlert(alice.page, 'profile that failed');
  assert.equal((await waitForMembers(alice.page, 1))[0].name, ALICE);

  const bob = await newPerson(env.browser);
  await enterRoom(bob, link, BOB);
  await waitForMembers(alice.page, 2);
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('typing first');
  await bob.page.getByLabel('Message', { exact: true }).fill('');
  await say(alice.page, SECRETS[0]);
  await waitForMessage(bob.page, ALICE, SECRETS[0]);
  await say(bob.page, SECRETS[1]);
  await waitForMessage(alice.page, BOB, SECRETS[1]);

  // Wait until the observer has both messages (presence and msgs are relayed in order).
  const deadline = Date.now() + 10_000;
  while (events.filter((e) => e.event === 'msg').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const msgs = events.filter((e) => e.event === 'msg').map((e) => e.payload);
  assert.ok(msgs.length >= 3, `the observer received the room's messages (typing and two texts), got ${msgs.length}`);
  for (const msg of msgs) {
    assert.equal(msg.room, room);
    assert.ok(Buffer.isBuffer(msg.data) || msg.data instanceof ArrayBuffer, 'sealed data travels as a binary attachment');
    assert.equal(Buffer.from(msg.data)[0], 0x01, 'sealed payload version 1');
  }
  const joins = events.filter((e) => e.event === 'presence' && e.payload.kind === 'join');
  assert.equal(joins.length, 1, 'the observer saw Bob join');

  const everything = Buffer.concat(received);
  assert.ok(everything.length > 500, `the observer received traffic (${everything.length} bytes)`);
  for (const secret of [ALICE, BOB, ...SECRETS, 'typing first', 'Alicia', 'Bartholomew', 'midnight', 'platform']) {
    for (const needle of encodings(secret)) {
      assert.equal(everything.indexOf(needle), -1, `"${secret}" leaked to the server side as ${needle.toString().slice(0, 40)}`);
    }
  }
  // Nor does the link secret (the fragment never leaves the browser).
  assert.equal(everything.indexOf(Buffer.from(new URL(link).hash.slice(1))), -1, 'the room secret leaked');

  observer.disconnect();
  await alice.context.close();
  await bob.context.close();
  assertNoErrors(alice, 'Alice');
  assertNoErrors(bob, 'Bob');
});
