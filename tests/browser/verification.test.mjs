// The browser against an independent implementation of docs/crypto.md (node:crypto): a bot
// that holds the room secret joins with a profile it seals itself. Alice's page must show
// the bot with the fingerprint node computes, show its genuine messages once (replays
// are dropped), and show tampered, re-attributed or wrongly signed messages only as
// warnings. In the other direction the bot opens and verifies what Alice's page sends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  createCipheriv, createDecipheriv, createHash, createPublicKey, generateKeyPairSync, hkdfSync, randomBytes, sign, verify,
} from 'node:crypto';
import { io } from 'socket.io-client';
import { nextEvent } from '../harness.mjs';
import {
  assertNoErrors, enterRoom, memberList, newPerson, say, waitForAlert, waitForMembers, waitForMessage,
  serverAndBrowser,
} from './browser-harness.mjs';

const env = serverAndBrowser();

/** docs/crypto.md (§3-§7), written again with node:crypto. */
class RoomCrypto {
  constructor(secret) {
    this.roomBytes = Buffer.from(hkdfSync('sha256', secret, 'streamchat/v1', 'room-id', 16));
    this.messageKey = Buffer.from(hkdfSync('sha256', secret, 'streamchat/v1', 'message-key', 32));
    this.roomId = this.roomBytes.toString('base64url');
  }

  member(member) {
    const bytes = Buffer.from(member, 'utf8');
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  }

  seal(member, privateKey, body, { signAs = member } = {}) {
    const signed = Buffer.concat([Buffer.from('streamchat/v1/sig'), this.roomBytes, this.member(signAs), body]);
    const signature = sign(null, signed, privateKey);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.messageKey, iv);
    cipher.setAAD(Buffer.concat([Buffer.from('streamchat/v1'), this.roomBytes, this.member(member)]));
    const ciphertext = Buffer.concat([cipher.update(Buffer.concat([signature, body])), cipher.final(), cipher.getAuthTag()]);
    return Buffer.concat([Buffer.from([1]), iv, ciphertext]);
  }

  /** Decrypts (throws if altered or moved); the signature is checked by `verify`. */
  decrypt(member, sealed) {
    const iv = sealed.subarray(1, 13);
    const decipher = createDecipheriv('aes-256-gcm', this.messageKey, iv);
    decipher.setAAD(Buffer.concat([Buffer.from('streamchat/v1'), this.roomBytes, this.member(member)]));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    const plaintext = Buffer.concat([decipher.update(sealed.subarray(13, sealed.length - 16)), decipher.final()]);
    return { signature: plaintext.subarray(0, 64), body: plaintext.subarray(64) };
  }

  verify(member, publicKey, { signature, body }) {
    const signed = Buffer.concat([Buffer.from('streamchat/v1/sig'), this.roomBytes, this.member(member), body]);
    return verify(null, signed, publicKey, signature);
  }
}

function rawPublicKey(publicKey) {
  return Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url');
}

function publicKeyFromRaw(raw) {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

function fingerprint(raw) {
  return createHash('sha256').update(raw).digest('hex').slice(0, 20).match(/.{4}/g).join(' ');
}

const json = (value) => Buffer.from(JSON.stringify(value), 'utf8');

test('an independent implementation interoperates; forgeries and replays never show as messages', async () => {
  const alice = await newPerson(env.browser);
  await enterRoom(alice, env.server.url, 'Alice');
  const room = new RoomCrypto(Buffer.from(new URL(alice.page.url()).hash.slice(1), 'base64url'));

  const bot = io(env.server.url, { transports: ['websocket'], reconnection: false });
  await nextEvent(bot, 'connect');
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const botKey = rawPublicKey(publicKey);
  const profile = room.seal(bot.id, privateKey, json({ type: 'profile', name: 'Botty', key: botKey.toString('base64url'), sent_at: Date.now() }));
  const ack = await bot.timeout(5000).emitWithAck('join', { room: room.roomId, profile: profile.toString('base64url') });
  assert.equal(ack.ok, true, JSON.stringify(ack));

  // Alice opens the bot's profile and shows the fingerprint node computes.
  await waitForAlert(alice.page, 'Botty joined the chat');
  const members = await waitForMembers(alice.page, 2);
  assert.equal(members.find((member) => member.name === 'Botty').fingerprint, fingerprint(botKey));

  // The bot opens Alice's profile from the join ack: signed by the key it announces.
  const [aliceEntry] = ack.members;
  const aliceEnvelope = room.decrypt(aliceEntry.member, Buffer.from(aliceEntry.profile, 'base64url'));
  const aliceProfile = JSON.parse(aliceEnvelope.body.toString('utf8'));
  assert.equal(aliceProfile.type, 'profile');
  assert.equal(aliceProfile.name, 'Alice');
  const aliceKey = publicKeyFromRaw(Buffer.from(aliceProfile.key, 'base64url'));
  assert.ok(room.verify(aliceEntry.member, aliceKey, aliceEnvelope), 'Alice’s profile is signed by her key');
  assert.equal(fingerprint(Buffer.from(aliceProfile.key, 'base64url')), members.find((member) => member.self).fingerprint);

  // ... and her messages.
  const bodies = [];
  const fromAlice = nextEvent(bot, 'msg', {
    ms: 10_000,
    pred: (msg) => {
      if (msg.from !== aliceEntry.member) return false;
      const envelope = room.decrypt(msg.from, Buffer.from(msg.data));
      assert.ok(room.verify(msg.from, aliceKey, envelope), 'Alice’s messages are signed by her key');
      const body = JSON.parse(envelope.body.toString('utf8'));
      bodies.push(body);
      return body.type === 'text';
    },
  });
  await say(alice.page, 'hello bot, can you read this?');
  await fromAlice;
  assert.deepEqual(bodies.map((body) => body.type), ['typing', 'text'], 'typing, then the text');
  assert.equal(bodies[1].text, 'hello bot, can you read this?');
  assert.ok(Math.abs(bodies[1].sent_at - Date.now()) < 60_000, 'sent_at is the client’s clock in ms');

  const send = async (data) => {
    const answer = await bot.timeout(5000).emitWithAck('msg', { room: room.roomId, data });
    assert.equal(answer.ok, true, JSON.stringify(answer));
  };

  // A genuine message, then the same bytes again (a replay): shown once.
  const genuine = room.seal(bot.id, privateKey, json({ type: 'text', text: 'genuine words from Botty', sent_at: Date.now() }));
  await send(genuine);
  await waitForMessage(alice.page, 'Botty', 'genuine words from Botty');
  await send(genuine);

  // Signed by another key.
  const other = generateKeyPairSync('ed25519').privateKey;
  await send(room.seal(bot.id, other, json({ type: 'text', text: 'forged signature', sent_at: Date.now() })));
  await waitForAlert(alice.page, 'A message from Botty failed signature verification and was not shown.');

  // Signed over another member id (signature re-attribution).
  await send(room.seal(bot.id, privateKey, json({ type: 'text', text: 'signed for someone else', sent_at: Date.now() }), { signAs: 'someone-else' }));

  // Sealed for another member id (the server re-attributing a message): cannot be decrypted as Botty's.
  await send(room.seal('someone-else', privateKey, json({ type: 'text', text: 'moved between members', sent_at: Date.now() })));
  await waitForAlert(alice.page, 'A message from Botty failed decryption and was not shown.');

  // A flipped byte.
  const flipped = Buffer.from(room.seal(bot.id, privateKey, json({ type: 'text', text: 'flipped in transit', sent_at: Date.now() })));
  flipped[20] ^= 1;
  await send(flipped);

  // Not JSON at all, though sealed and signed correctly.
  await send(room.seal(bot.id, privateKey, Buffer.from('not a body')));
  await waitForAlert(alice.page, 'A malformed message from Botty was not shown.');

  await send(room.seal(bot.id, privateKey, json({ type: 'text', text: 'last genuine words', sent_at: Date.now() })));
  await waitForMessage(alice.page, 'Botty', 'last genuine words');

  const texts = await alice.page.locator('li.msg .text').allTextContents();
  assert.deepEqual(texts, ['hello bot, can you read this?', 'genuine words from Botty', 'last genuine words'], 'only genuine messages, each once');
  const warnings = await alice.page.locator('li.alert.warning').allTextContents();
  assert.ok(warnings.some((text) => /failed decryption.*×2/.test(text)), `the two undecryptable messages are counted: ${warnings.join(' | ')}`);
  assert.ok(warnings.some((text) => /failed signature verification.*×2/.test(text)), `both bad signatures are counted: ${warnings.join(' | ')}`);
  assert.equal((await memberList(alice.page)).length, 2);

  bot.disconnect();
  await waitForAlert(alice.page, 'Botty left the chat');
  assertNoErrors(alice, 'Alice');
  await alice.context.close();
});
