// `streamchat chat --json` end to end against the release binary: two terminal clients
// in one room see each other's verified profiles with the same fingerprints, exchange
// text and a file (saved to disk and compared), see presence with time and date, and
// report command errors as events. Also `streamchat room new`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { startServer } from '../harness.mjs';
import { runCli, startBot, stopBots } from './cli-harness.mjs';

let server;
let dir;

before(async () => {
  server = await startServer();
  dir = mkdtempSync(path.join(tmpdir(), 'streamchat-json-'));
});

after(async () => {
  await stopBots();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function newLink() {
  const { code, stdout } = await runCli(['room', 'new', '--server', server.url, '--kind', 'v1']);
  assert.equal(code, 0);
  const link = stdout.trim();
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/#[A-Za-z0-9_-]{43}$/);
  return link;
}

const b64url = (buf) => buf.toString('base64url');

test('room new prints a fresh invite link each time: a knock room unless --kind says otherwise', async () => {
  const { stdout: a } = await runCli(['room', 'new']);
  const { stdout: b } = await runCli(['room', 'new']);
  assert.match(a.trim(), /^http:\/\/localhost:8000\/#2\.[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a, b);
  const { stdout: open } = await runCli(['room', 'new', '--kind', 'open']);
  assert.match(open.trim(), /^http:\/\/localhost:8000\/#2o\.[A-Za-z0-9_-]{43}$/);
  const { stdout: v1 } = await runCli(['room', 'new', '--kind', 'v1']);
  assert.match(v1.trim(), /^http:\/\/localhost:8000\/#[A-Za-z0-9_-]{43}$/);
});

test('two JSON clients chat, share a file and see presence', async () => {
  const link = await newLink();
  const alice = startBot(link, 'Alice');
  const aliceReady = await alice.next('ready');
  assert.equal(aliceReady.rejoin, false);
  assert.deepEqual(aliceReady.members, []);
  assert.equal(aliceReady.me.name, 'Alice');
  assert.match(aliceReady.me.fingerprint, /^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
  assert.match(aliceReady.room, /^[A-Za-z0-9_-]{22}$/);
  assert.ok(aliceReady.limits.max_message_bytes > 0);

  const bob = startBot(link, 'Bob');
  const bobReady = await bob.next('ready');
  assert.equal(bobReady.members.length, 1);
  assert.equal(bobReady.members[0].name, 'Alice');
  assert.equal(bobReady.members[0].fingerprint, aliceReady.me.fingerprint, 'Bob sees the fingerprint Alice has');
  assert.equal(bobReady.members[0].key, aliceReady.me.key);

  const joined = await alice.next('joined');
  assert.equal(joined.member.name, 'Bob');
  assert.equal(joined.member.fingerprint, bobReady.me.fingerprint, 'Alice sees the fingerprint Bob has');
  assert.match(joined.text, /^Bob joined the chat at \d{2}:\d{2}:\d{2} on \d{4}-\d{2}-\d{2}$/);
  assert.match(joined.time, /^\d{2}:\d{2}:\d{2}$/);
  assert.match(joined.date, /^\d{4}-\d{2}-\d{2}$/);

  // Text both ways; a leading slash needs "//".
  alice.send('Hello Bob, Grüße 👋');
  const queued = await alice.next('queued');
  assert.equal(queued.kind, 'text');
  const sent = await alice.next((e) => e.event === 'sent' && e.id === queued.id);
  const message = await bob.next('message');
  assert.equal(message.text, 'Hello Bob, Grüße 👋');
  assert.equal(message.from.name, 'Alice');
  assert.equal(message.from.fingerprint, aliceReady.me.fingerprint);
  assert.equal(message.ts, sent.ts, 'the receiver sees the time the server acked');
  assert.equal(message.direct, false);
  bob.send('//slash at the start');
  assert.equal((await alice.next('message')).text, '/slash at the start');

  // A file from Bob, saved by Alice, byte for byte.
  const content = randomBytes(700 * 1024 + 5);
  const source = path.join(dir, 'photo.jpg');
  writeFileSync(source, content);
  bob.send(`/send ${source}`);
  const fileQueued = await bob.next((e) => e.event === 'queued' && e.kind === 'file');
  assert.equal(fileQueued.name, 'photo.jpg');
  const offered = await alice.next('file_offered');
  assert.equal(offered.file.name, 'photo.jpg');
  assert.equal(offered.file.mime, 'image/jpeg');
  assert.equal(offered.file.size, content.length);
  assert.equal(offered.file.chunks, 3);
  const received = await alice.next('file');
  assert.equal(received.number, 1);
  assert.equal(received.file.sha256, b64url(createHash('sha256').update(content).digest()));
  assert.equal(received.from.fingerprint, bobReady.me.fingerprint);
  const fileSent = await bob.next('file_sent');
  assert.equal(fileSent.id, fileQueued.id);
  const target = path.join(dir, 'saved.jpg');
  alice.send(`/save 1 ${target}`);
  const saved = await alice.next('saved');
  assert.equal(saved.path, target);
  assert.equal(saved.bytes, content.length);
  assert.deepEqual(readFileSync(target), content);
  // Saving never overwrites.
  alice.send(`/save 1 ${target}`);
  assert.match((await alice.next('error')).message, /exists/i);

  // /who lists everyone with fingerprints, self first.
  alice.send('/who');
  const who = await alice.next('members');
  assert.deepEqual(who.members.map((m) => [m.name, m.self]), [['Alice', true], ['Bob', false]]);
  assert.equal(who.members[1].fingerprint, bobReady.me.fingerprint);

  // Errors are events, not crashes.
  alice.send('/frobnicate');
  assert.match((await alice.next('error')).message, /unknown command/);
  alice.send('/save 42 /tmp/x');
  assert.match((await alice.next('error')).message, /no received file number 42/);
  alice.send(`/send ${path.join(dir, 'missing.bin')}`);
  assert.match((await alice.next('error')).message, /missing\.bin/);

  // End of input: Bob's last line is still delivered, then he leaves.
  bob.send('last words');
  bob.end();
  assert.equal((await alice.next('message')).text, 'last words');
  const left = await alice.next('left');
  assert.equal(left.member.name, 'Bob');
  assert.equal(left.reason, 'left');
  assert.match(left.text, /^Bob left the chat at \d{2}:\d{2}:\d{2} on \d{4}-\d{2}-\d{2}$/);
  assert.equal((await bob.next('closed')).reason, 'left the room');
  assert.equal((await bob.exited).code, 0);

  alice.send('/quit');
  await alice.next('closed');
  assert.equal((await alice.exited).code, 0);
});

test('a bad link and a full room are refused with a closed event and an exit code', async () => {
  const bad = startBot(`${server.url}/#tooshort`, 'X');
  assert.notEqual((await bad.exited).code, 0);
  assert.match(bad.stderr(), /invite link|room secret/);

  const full = await startServer(['--max-members-per-room', '1']);
  try {
    const { stdout } = await runCli(['room', 'new', '--server', full.url, '--kind', 'v1']);
    const link = stdout.trim();
    const first = startBot(link, 'First');
    await first.next('ready');
    const second = startBot(link, 'Second');
    const closed = await second.next('closed');
    assert.match(closed.reason, /room_full/);
    assert.notEqual((await second.exited).code, 0);
    await first.stop();
  } finally {
    await full.stop();
  }
});

test('a server restart is survived: the client rejoins with a new member id', async () => {
  const own = await startServer();
  const port = own.port;
  const { stdout } = await runCli(['room', 'new', '--server', own.url, '--kind', 'v1']);
  const link = stdout.trim();
  const alice = startBot(link, 'Alice');
  const first = await alice.next('ready');
  await own.stop();
  await alice.next('disconnected');
  const again = await startServer([], { port });
  try {
    const ready = await alice.next((e) => e.event === 'ready' && e.rejoin, 20_000);
    assert.notEqual(ready.me.member, first.me.member, 'a new connection is a new member');
    assert.equal(ready.me.fingerprint, first.me.fingerprint, 'the identity stays');
    const bob = startBot(link, 'Bob');
    const bobReady = await bob.next('ready');
    assert.deepEqual(bobReady.members.map((m) => m.name), ['Alice']);
    alice.send('still here');
    assert.equal((await bob.next('message')).text, 'still here');
    await bob.stop();
    await alice.stop();
  } finally {
    await again.stop();
  }
});

test('https:// links work, with the certificate checked against a CA given by --ca-cert', async () => {
  // A CA and a server certificate for 127.0.0.1 signed by it, made with openssl.
  const ssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=StreamChat test CA');
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '1', '-extfile', 'ext.cnf');
  const tls = await startServer(['--tls-cert', path.join(dir, 'server.pem'), '--tls-key', path.join(dir, 'server.key')]);
  try {
    assert.match(tls.url, /^https:/);
    const { stdout } = await runCli(['room', 'new', '--server', tls.url, '--kind', 'v1']);
    const link = stdout.trim();
    assert.match(link, /^https:\/\//);

    // Without the CA the certificate is unknown: refused, nothing sent.
    const untrusting = startBot(link, 'Careful');
    assert.match((await untrusting.next('closed')).reason, /certificate/i);
    assert.notEqual((await untrusting.exited).code, 0);

    const ca = path.join(dir, 'ca.pem');
    const alice = startBot(link, 'Alice', ['--ca-cert', ca]);
    await alice.next('ready');
    const bob = startBot(link, 'Bob', ['--ca-cert', ca]);
    await bob.next('ready');
    alice.send('over TLS');
    assert.equal((await bob.next('message')).text, 'over TLS');
    await alice.stop();
    await bob.stop();
  } finally {
    await tls.stop();
  }
});

test('two JSON clients reply, react, edit and delete by message number; only the author changes a message', async () => {
  const link = await newLink();
  const alice = startBot(link, 'Alice');
  await alice.next('ready');
  const bob = startBot(link, 'Bob');
  await bob.next('ready');
  await alice.next('joined');

  alice.send('lunch at noon?');
  const queued = await alice.next('queued');
  assert.equal(queued.kind, 'text');
  assert.equal(queued.number, 1);
  const question = await bob.next('message');
  assert.equal(question.number, 1);
  assert.deepEqual(question.message, queued.message, 'both sides name the text alike');
  assert.equal(question.reply_to, null);

  // A reply, numbered on both sides, naming the text it answers.
  bob.send('/reply 1 yes, at the usual place');
  assert.equal((await bob.next('queued')).reply_to, 1);
  const answer = await alice.next('message');
  assert.equal(answer.number, 2);
  assert.equal(answer.reply_to.number, 1);
  assert.equal(answer.reply_to.text, 'lunch at noon?');
  assert.equal(answer.reply_to.quote, 'lunch at noon?');

  // Reactions: on, counted with who; the same emoji again takes it back.
  bob.send('/react 1 👍');
  const own = await bob.next((e) => e.event === 'queued' && e.kind === 'reaction');
  assert.equal(own.add, true);
  let reaction = await alice.next('reaction');
  assert.deepEqual([reaction.number, reaction.emoji, reaction.add], [1, '👍', true]);
  assert.deepEqual(reaction.reactions, [{ emoji: '👍', count: 1, names: ['Bob'], mine: false }]);
  alice.send('/react 1 👍');
  assert.deepEqual((await alice.next((e) => e.event === 'queued' && e.kind === 'reaction')).reactions,
    [{ emoji: '👍', count: 2, names: ['Bob', 'Alice'], mine: true }]);
  bob.send('/react 1 👍');
  assert.equal((await bob.next((e) => e.event === 'queued' && e.kind === 'reaction')).add, false);
  reaction = await alice.next((e) => e.event === 'reaction' && e.add === false);
  assert.deepEqual(reaction.reactions, [{ emoji: '👍', count: 1, names: ['Alice'], mine: true }]);

  // Edits and deletions: one's own only; the others see them by number.
  bob.send('/edit 1 dinner instead?');
  assert.match((await bob.next('error')).message, /message 1 is Alice's: you can edit or delete only your own messages/);
  bob.send('/delete 1');
  assert.match((await bob.next('error')).message, /only your own/);
  alice.send('/edit 1 lunch at half past twelve?');
  assert.equal((await alice.next((e) => e.event === 'queued' && e.kind === 'edit')).number, 1);
  const edited = await bob.next('edited');
  assert.deepEqual([edited.number, edited.text, edited.from.name], [1, 'lunch at half past twelve?', 'Alice']);
  bob.send('/delete 2');
  assert.equal((await bob.next((e) => e.event === 'queued' && e.kind === 'delete')).number, 2);
  const deleted = await alice.next('deleted');
  assert.deepEqual([deleted.number, deleted.from.name], [2, 'Bob']);
  bob.send('/react 2 👍');
  assert.match((await bob.next('error')).message, /message 2 was deleted/);
  bob.send('/reply 9 hello?');
  assert.match((await bob.next('error')).message, /no message number 9/);
  bob.send('/react 1 not one');
  assert.match((await bob.next('error')).message, /one emoji/);

  assert.deepEqual([...alice.events, ...bob.events].filter((e) => e.event === 'warning' || e.event === 'send_failed'), []);
  alice.end();
  bob.end();
  await Promise.all([alice.exited, bob.exited]);
});

test('trust alerts: a name back with another key, and two people with one name', async () => {
  const link = await newLink();
  const alice = startBot(link, 'Alice');
  await alice.next('ready');
  const bob = startBot(link, 'Bob');
  const bobReady = await bob.next('ready');
  await alice.next('joined');
  assert.deepEqual(alice.events.filter((e) => e.event === 'warning'), [], 'one Bob: nothing to say');

  // A second "bob" while Bob is here.
  const impostor = startBot(link, 'bob');
  const impostorReady = await impostor.next('ready');
  const twoBobs = await alice.next('warning');
  assert.match(twoBobs.message, /^Now two people here are called bob: compare fingerprints \(\/who\)/);
  assert.ok(twoBobs.message.includes(bobReady.me.fingerprint) && twoBobs.message.includes(impostorReady.me.fingerprint));
  // Whoever joins now hears it once, for the pair.
  const carol = startBot(link, 'Carol');
  await carol.next('ready');
  const carolWarning = await carol.next('warning');
  assert.match(carolWarning.message, /^Now two people here are called [Bb]ob/);

  // Both leave; "Bob" comes back with a new key (a new session, or someone else).
  impostor.end();
  bob.end();
  await Promise.all([impostor.exited, bob.exited]);
  await alice.next((e) => e.event === 'left' && e.member.name === 'Bob');
  const returning = startBot(link, 'Bob');
  const returningReady = await returning.next('ready');
  const changed = await alice.next('warning');
  assert.match(changed.message, /^Bob is here with a different key than the Bob seen earlier in this room/);
  assert.ok(changed.message.includes(returningReady.me.fingerprint));
  assert.ok(changed.message.includes(impostorReady.me.fingerprint), 'the key last seen with the name');

  // Someone takes Alice's own name.
  const fake = startBot(link, 'alice');
  await fake.next('ready');
  assert.match((await alice.next('warning')).message, /^Now you and someone else here are called alice/);

  for (const bot of [alice, carol, returning, fake]) bot.end();
  await Promise.all([alice.exited, carol.exited, returning.exited, fake.exited]);
  assert.equal(carol.events.filter((e) => e.event === 'warning').length >= 1, true);
});
