// The full-screen terminal UI driven in tmux (send-keys / capture-pane) against the
// release binary: it joins and shows the encryption status and its own fingerprint, shows
// another member (a JSON client) joining with time and date and with the fingerprint that
// member has for itself, receives and sends messages, lists who is online, and quits.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { binaryPath, startServer } from '../harness.mjs';
import { Tmux, runCli, startBot, stopBots } from './cli-harness.mjs';

let server;
let tmux;

before(async () => {
  server = await startServer();
  tmux = new Tmux();
});

after(async () => {
  await stopBots();
  tmux?.kill();
  await server?.stop();
});

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('the TUI joins, shows the other member and exchanges messages', async () => {
  const { stdout } = await runCli(['room', 'new', '--server', server.url, '--kind', 'v1']);
  const link = stdout.trim();
  tmux.start('tui', [binaryPath(), 'chat', link, '--name', 'Terminal Tess'], { env: { TZ: 'UTC', TERM: 'xterm-256color' } });
  let screen = await tmux.waitFor('tui', /You joined the chat at \d{2}:\d{2}:\d{2} on \d{4}-\d{2}-\d{2}/);
  assert.match(screen, /End-to-end encrypted/);
  assert.match(screen, /Online \(1\)/);
  const own = screen.match(/you: Terminal Tess \(([0-9a-f]{4}(?: [0-9a-f]{4}){4})\)/);
  assert.ok(own, `status line shows the own fingerprint:\n${screen}`);

  const bot = startBot(link, 'Botty');
  const ready = await bot.next('ready');
  assert.equal(ready.members.length, 1);
  assert.equal(ready.members[0].name, 'Terminal Tess');
  assert.equal(ready.members[0].fingerprint, own[1], 'the bot sees the fingerprint the TUI shows for itself');

  screen = await tmux.waitFor('tui', /Botty joined the chat at \d{2}:\d{2}:\d{2} on \d{4}-\d{2}-\d{2}/);
  await tmux.waitFor('tui', 'Online (2)');
  screen = await tmux.waitFor('tui', ready.me.fingerprint);
  assert.ok(screen.includes(ready.me.fingerprint), 'the online list shows the bot\'s own fingerprint');

  bot.send('Hello terminal, from the bot');
  const short = ready.me.fingerprint.split(' ').slice(0, 2).join(' ');
  screen = await tmux.waitFor('tui', 'Hello terminal, from the bot');
  assert.match(screen, new RegExp(`\\d{2}:\\d{2}:\\d{2} · \\d{4}-\\d{2}-\\d{2} Botty \\[${escape(short)}\\]: Hello terminal, from the bot`));

  // Escape sequences from others are shown as text, never obeyed.
  bot.send('red \u001b[31malert\u001b[0m and a bell \u0007');
  screen = await tmux.waitFor('tui', 'and a bell');
  assert.match(screen, /red \[31malert\[0m and a bell/);

  tmux.typeLine('tui', 'Hi bot, typed in tmux');
  const message = await bot.next((e) => e.event === 'message' && e.text === 'Hi bot, typed in tmux');
  assert.equal(message.from.name, 'Terminal Tess');
  assert.equal(message.from.fingerprint, own[1]);
  try {
    await tmux.waitFor('tui', /Terminal Tess \(you\) \[[0-9a-f ]+\]: Hi bot, typed in tmux/);
  } catch (e) {
    // What the other member saw meanwhile (did the TUI's session drop and come back?).
    e.message += `\nthe bot's events:\n${bot.events.map((x) => JSON.stringify(x)).join('\n')}`;
    throw e;
  }

  // Lines typed in a burst are each acknowledged and shown as sent: none stays
  // "sending…" (an ack handled before its line was in the TUI's model used to be lost).
  const burst = Array.from({ length: 12 }, (_, i) => `burst line ${i}`);
  for (const line of burst) tmux.typeLine('tui', line);
  for (const line of burst) assert.equal((await bot.next('message')).text, line);
  const allSent = {
    test: (s) => s.includes('burst line 11') && !s.includes('sending…'),
    toString: () => 'the burst, every line sent (no "sending…")',
  };
  await tmux.waitFor('tui', allSent);

  // One wait for both lines: a capture can fall between two writes of one frame (the
  // terminal gets a frame in pieces), so a line below the one waited for may not be there yet.
  tmux.typeLine('tui', '/who');
  await tmux.waitFor('tui', new RegExp(`Online \\(2\\): Terminal Tess \\(you\\)[^]*\n\\*? *Botty ${escape(ready.me.fingerprint)}`));

  tmux.typeLine('tui', '/quit');
  const left = await bot.next('left');
  assert.equal(left.member.name, 'Terminal Tess');
  assert.equal(left.reason, 'left');
  const deadline = Date.now() + 10_000;
  while (!tmux.dead('tui') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(tmux.dead('tui'), 'the TUI exits after /quit');
  await bot.stop();
});

test('a file sent to the TUI is kept in memory and saved with /save', async () => {
  const { mkdtempSync, readFileSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const path = await import('node:path');
  const { randomBytes } = await import('node:crypto');
  const dir = mkdtempSync(path.join(tmpdir(), 'streamchat-tui-'));
  try {
    const { stdout } = await runCli(['room', 'new', '--server', server.url, '--kind', 'v1']);
    const link = stdout.trim();
    tmux.start('files', [binaryPath(), 'chat', link, '--name', 'Tess'], { env: { TZ: 'UTC', TERM: 'xterm-256color' } });
    await tmux.waitFor('files', 'You joined the chat');
    const bot = startBot(link, 'Botty');
    await bot.next('ready');
    const content = randomBytes(300 * 1024);
    writeFileSync(path.join(dir, 'in.png'), content);
    bot.send(`/send ${path.join(dir, 'in.png')}`);
    await tmux.waitFor('files', /\[file 1\] Botty shared in\.png \(image\/png, 300 KiB\): received and verified/);
    const target = path.join(dir, 'out.png');
    tmux.typeLine('files', `/save 1 ${target}`);
    await tmux.waitFor('files', `Saved file 1 to ${target}`);
    assert.deepEqual(readFileSync(target), content);

    // And the other way: /send from the TUI.
    const upload = randomBytes(100 * 1024);
    writeFileSync(path.join(dir, 'up.bin'), upload);
    tmux.typeLine('files', `/send ${path.join(dir, 'up.bin')}`);
    const received = await bot.next('file');
    assert.equal(received.file.name, 'up.bin');
    bot.send(`/save ${received.number} ${path.join(dir, 'got.bin')}`);
    await bot.next('saved');
    assert.deepEqual(readFileSync(path.join(dir, 'got.bin')), upload);
    await tmux.waitFor('files', 'You shared up.bin (100 KiB).');

    // Lines typed right before quitting still go out before the TUI leaves.
    for (const line of ['one', 'two', 'three']) tmux.typeLine('files', line);
    tmux.keys('files', 'C-c');
    for (const line of ['one', 'two', 'three']) assert.equal((await bot.next('message')).text, line);
    await bot.next('left');
    await bot.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the TUI numbers messages and shows replies, reactions, edits and deletions both ways', async () => {
  const { stdout } = await runCli(['room', 'new', '--server', server.url, '--kind', 'v1']);
  const link = stdout.trim();
  tmux.start('threads', [binaryPath(), 'chat', link, '--name', 'Tess'], { env: { TZ: 'UTC', TERM: 'xterm-256color' } });
  await tmux.waitFor('threads', /You joined the chat at/);
  const bot = startBot(link, 'Botty');
  await bot.next('ready');
  await tmux.waitFor('threads', 'Online (2)');

  bot.send('Where shall we meet?');
  await tmux.waitFor('threads', /#1 \d{2}:\d{2}:\d{2} · \d{4}-\d{2}-\d{2} Botty \[[0-9a-f ]+\]: Where shall we meet\?/);

  // The TUI answers #1 and reacts to it; the bot sees both by number.
  tmux.typeLine('threads', '/reply 1 At the station.');
  const reply = await bot.next((e) => e.event === 'message' && e.text === 'At the station.');
  assert.equal(reply.reply_to.number, 1);
  await tmux.waitFor('threads', '↪ Botty #1: Where shall we meet?');
  tmux.typeLine('threads', '/react 1 👍');
  const reaction = await bot.next('reaction');
  assert.deepEqual(reaction.reactions, [{ emoji: '👍', count: 1, names: ['Tess'], mine: false }]);

  // The bot's reply, reaction, edit and deletion show in the TUI.
  bot.send('/reply 2 See you there');
  await tmux.waitFor('threads', '↪ Tess #2: At the station.');
  bot.send('/react 2 🎉');
  await tmux.waitFor('threads', ' 1 (Botty)');
  bot.send('/edit 1 Where and when shall we meet?');
  await tmux.waitFor('threads', 'Where and when shall we meet? (edited)');
  bot.send('/delete 3');
  await tmux.waitFor('threads', {
    test: (s) => s.includes('message deleted') && !s.includes('See you there'),
    toString: () => '"message deleted" in place of "See you there"',
  });

  // The TUI edits and deletes its own, and refuses to change the bot's.
  tmux.typeLine('threads', '/edit 2 At the central station.');
  const edited = await bot.next('edited');
  assert.deepEqual([edited.number, edited.text], [2, 'At the central station.']);
  tmux.typeLine('threads', '/edit 1 mine now');
  await tmux.waitFor('threads', 'you can edit or delete only your own messages');
  tmux.typeLine('threads', '/delete 2');
  assert.equal((await bot.next('deleted')).number, 2);
  assert.deepEqual(bot.events.filter((e) => e.event === 'warning' || e.event === 'error'), []);
  tmux.typeLine('threads', '/quit');
  bot.end();
  await bot.exited;
});
