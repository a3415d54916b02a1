// Memory of a room's replay window: a server, one room of two members, and one member
// sending 64 KiB messages until the room has relayed 24 MiB (more than the default
// 16 MiB window holds). Prints the server's RSS before, after, and per room.
//
//   node bench/window-memory.mjs [BIN] [-- extra serve flags]
//
// Loopback only, a free port, bounded (about 10 s); ends only the server it started.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'package.json'));
const { io } = require('socket.io-client');

const bin = process.argv[2] && process.argv[2] !== '--' ? process.argv[2]
  : path.join(process.env.CARGO_TARGET_DIR ?? path.join(process.env.HOME, '.cache/streamchat-target'), 'release/streamchat');
const extra = process.argv.includes('--') ? process.argv.slice(process.argv.indexOf('--') + 1) : [];
const rooms = Number(process.env.ROOMS ?? 1);

const server = spawn(bin, ['serve', '--port', '0', '--messages-per-second', '100000', '--message-burst', '100000',
  '--bytes-per-second', '1000000000', '--byte-burst', '1000000000', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  const onData = (d) => { out += d; const m = out.match(/listening on [^\s]*:(\d+)/); if (m) resolve(Number(m[1])); };
  server.stdout.on('data', onData);
  server.stderr.on('data', onData);
  setTimeout(() => reject(new Error(`server did not start: ${out}`)), 10_000);
});
const rss = () => Number(readFileSync(`/proc/${server.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const connect = () => new Promise((resolve, reject) => {
  const s = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false });
  s.once('connect', () => resolve(s));
  s.once('connect_error', reject);
});
const room = (i) => Buffer.alloc(16, i + 1).toString('base64url');
const profile = Buffer.alloc(48, 7).toString('base64url');

try {
  const sockets = [];
  for (let r = 0; r < rooms; r++) {
    const a = await connect();
    const b = await connect();
    await a.emitWithAck('join', { room: room(r), profile });
    await b.emitWithAck('join', { room: room(r), profile });
    sockets.push([a, b]);
  }
  await new Promise((r) => setTimeout(r, 500));
  const before = rss();
  const chunk = Buffer.alloc(64 * 1024, 1);
  const perRoom = 24 * 1024 * 1024;
  for (const [a] of sockets) {
    for (let sent = 0; sent < perRoom; sent += chunk.length) {
      const ack = await a.emitWithAck('msg', { room: room(sockets.findIndex(([x]) => x === a)), data: chunk });
      if (!ack.ok) throw new Error(JSON.stringify(ack));
    }
  }
  await new Promise((r) => setTimeout(r, 1000));
  const after = rss();
  console.log(JSON.stringify({
    probe: 'window-memory', rooms, relayed_mib_per_room: perRoom / 1048576, flags: extra.join(' '),
    rss_before_kib: before, rss_after_kib: after, kib_per_room: Math.round((after - before) / rooms),
  }));
  for (const pair of sockets) for (const s of pair) s.close();
} finally {
  server.kill('SIGTERM');
}
