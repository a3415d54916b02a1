// Soak benchmark (issue #8; not in CI): steady mixed traffic with joins and leaves
// against a running streamchat server for a fixed time, sampling the server's RSS and
// open file descriptors. Reports drift: the mean of the last fifth of the run against
// the mean of the second fifth (the first is warm-up). Loopback only; bounded in time.
//
//   node bench/soak.mjs --url http://127.0.0.1:PORT --server-pid PID [--minutes 30]
//     [--clients 200] [--rooms 20] [--rate 2] [--churn-per-min 60] [--sample-secs 10]
//
// Prints a line per sample and one JSON summary line at the end.
import { readFileSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { io } from 'socket.io-client';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const url = arg('url');
const pid = Number(arg('server-pid'));
const minutes = Number(arg('minutes', 30));
const clients = Number(arg('clients', 200));
const rooms = Number(arg('rooms', 20));
const rate = Number(arg('rate', 2)); // messages per second per client
const churnPerMin = Number(arg('churn-per-min', 60));
const sampleSecs = Number(arg('sample-secs', 10));
if (!url || !pid || !/^https?:\/\/(127\.|localhost|\[::1\])/.test(url)) {
  console.error('usage: --url http://127.0.0.1:PORT --server-pid PID (loopback only)');
  process.exit(2);
}

const roomIds = Array.from({ length: rooms }, () => randomBytes(16).toString('base64url'));
const stats = { sent: 0, acked: 0, refused: 0, received: 0, joins: 0, leaves: 0, errors: 0 };

function rssKiB() {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  return Number(m[1]);
}
const fds = () => readdirSync(`/proc/${pid}/fd`).length;

function connect(i) {
  const socket = io(url, { transports: ['websocket'], forceNew: true, reconnection: false });
  const member = { socket, room: roomIds[i % rooms], joined: false };
  socket.on('msg', () => { stats.received++; });
  socket.on('connect', async () => {
    try {
      const ack = await socket.timeout(10_000).emitWithAck('join', { room: member.room, profile: randomBytes(48).toString('base64url') });
      if (ack?.ok) { member.joined = true; stats.joins++; } else stats.errors++;
    } catch { stats.errors++; }
  });
  return member;
}

const members = Array.from({ length: clients }, (_, i) => connect(i));
const deadline = Date.now() + minutes * 60_000;

// Steady traffic: each client sends at `rate` per second (spread over the interval).
const tick = setInterval(() => {
  for (const m of members) {
    if (!m.joined || Math.random() > rate / 10) continue;
    stats.sent++;
    m.socket.timeout(10_000).emitWithAck('msg', { room: m.room, data: randomBytes(200) })
      .then((ack) => { if (ack?.ok) stats.acked++; else stats.refused++; })
      .catch(() => { stats.errors++; });
  }
}, 100);

// Churn: some clients leave and come back (new connection, new member id) every minute.
const churn = setInterval(() => {
  for (let k = 0; k < Math.max(1, Math.round(churnPerMin / 6)); k++) {
    const i = Math.floor(Math.random() * members.length);
    const old = members[i];
    old.joined = false;
    old.socket.close();
    stats.leaves++;
    members[i] = connect(i);
  }
}, 10_000);

const samples = [];
const startedAt = Date.now();
const sampler = setInterval(() => {
  const s = { t: Math.round((Date.now() - startedAt) / 1000), rssKiB: rssKiB(), fds: fds(), ...stats };
  samples.push(s);
  console.log(JSON.stringify(s));
}, sampleSecs * 1000);

await new Promise((resolve) => setTimeout(resolve, deadline - Date.now()));
clearInterval(tick);
clearInterval(churn);
clearInterval(sampler);
for (const m of members) m.socket.close();

const fifth = Math.max(1, Math.floor(samples.length / 5));
const mean = (xs, key) => xs.reduce((a, s) => a + s[key], 0) / xs.length;
const early = samples.slice(fifth, 2 * fifth);
const late = samples.slice(-fifth);
const drift = (key) => (mean(late, key) - mean(early, key)) / mean(early, key);
console.log(JSON.stringify({
  summary: true, minutes, clients, rooms, rate, churnPerMin, ...stats,
  rssKiB: { early: Math.round(mean(early, 'rssKiB')), late: Math.round(mean(late, 'rssKiB')), drift: Number(drift('rssKiB').toFixed(4)) },
  fds: { early: Number(mean(early, 'fds').toFixed(1)), late: Number(mean(late, 'fds').toFixed(1)), drift: Number(drift('fds').toFixed(4)) },
}));
process.exit(0);
