// Honest clients for the hostile-client tests, in a worker thread of their own, so that
// the hostile clients' work in the main thread does not delay their event loop and the
// latencies they measure are the server's and the network's.
//
// workerData: { url, room, peers, intervalMs }. Posts {type:'ready', ids}; on 'stop',
// stops sending, waits until every peer has every other peer's end marker (the room's
// order makes that a barrier), then posts {type:'result', ...} and exits.
// Not a test file itself (the runner only picks up *.test.mjs).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { openSocket, toBuf } from '../node/helpers.mjs';

const { url, room, peers: count, intervalMs } = workerData;
const TAG = Buffer.from('honest');
const END = 0xffffffff;

/** `honest` || sender (u8) || seq (u32 BE) || 21 random bytes. */
function payload(sender, seq) {
  const b = Buffer.concat([TAG, Buffer.alloc(5), randomBytes(21)]);
  b.writeUInt8(sender, TAG.length);
  b.writeUInt32BE(seq, TAG.length + 1);
  return b;
}

const sockets = [];
for (let i = 0; i < count; i++) sockets.push(await openSocket(url));
const ids = sockets.map((s) => s.id);

const sentAt = new Map(); // `${sender}:${seq}` → performance.now() at emit
const received = sockets.map(() => sockets.map(() => [])); // [receiver][sender] → seqs
const ended = sockets.map(() => new Set()); // receiver → senders whose end marker arrived
const ackMs = [];
const deliveryMs = [];
const problems = [];
const unexpected = []; // events an honest member should not see in its quiet room

sockets.forEach((s, r) => {
  s.on('msg', (m) => {
    const now = performance.now();
    if (m.room !== room) { unexpected.push(`msg for another room ${m.room}`); return; }
    const b = toBuf(m.data);
    if (!b.subarray(0, TAG.length).equals(TAG)) { unexpected.push('msg that is not from an honest peer'); return; }
    const sender = b.readUInt8(TAG.length);
    const seq = b.readUInt32BE(TAG.length + 1);
    if (m.from !== ids[sender]) problems.push(`receiver ${r}: msg from ${m.from} claims sender ${sender}`);
    if (seq === END) { ended[r].add(sender); return; }
    received[r][sender].push(seq);
    const t0 = sentAt.get(`${sender}:${seq}`);
    if (t0 !== undefined) deliveryMs.push(now - t0);
  });
  s.on('presence', (p) => unexpected.push(`presence ${p.kind} of ${p.member} (${p.reason ?? ''})`));
  s.on('notice', (n) => unexpected.push(`notice ${n.code}`));
  s.on('disconnect', (reason) => problems.push(`peer ${r} disconnected: ${reason}`));
});

// Join one after the other, so the presence of later joiners reaches earlier ones first;
// those join events are expected and cleared below.
for (const s of sockets) {
  const ack = await s.timeout(5000).emitWithAck('join', { room, profile: randomBytes(48).toString('base64url') });
  if (!ack?.ok) throw new Error(`honest join failed: ${JSON.stringify(ack)}`);
}
await sleep(200);
unexpected.length = 0;

let running = true;
const sentCount = sockets.map(() => 0);

async function loop(s, i) {
  let next = performance.now();
  while (running) {
    const seq = sentCount[i];
    sentAt.set(`${i}:${seq}`, performance.now());
    const t0 = performance.now();
    let ack;
    try {
      ack = await s.timeout(10_000).emitWithAck('msg', { room, data: payload(i, seq) });
    } catch (e) {
      ack = { error: e.message };
    }
    ackMs.push(performance.now() - t0);
    if (!ack?.ok) problems.push(`peer ${i} seq ${seq}: ${JSON.stringify(ack)}`);
    sentCount[i] = seq + 1;
    next += intervalMs;
    await sleep(Math.max(0, next - performance.now()));
  }
}

const loops = sockets.map((s, i) => loop(s, i));
parentPort.postMessage({ type: 'ready', ids });

parentPort.once('message', async () => {
  running = false;
  await Promise.all(loops);
  // End markers: everything a peer sent before its marker reaches the others first.
  await Promise.all(sockets.map((s, i) => s.timeout(10_000).emitWithAck('msg', { room, data: payload(i, END) })
    .catch((e) => problems.push(`end marker of ${i}: ${e.message}`))));
  const deadline = Date.now() + 15_000;
  while (ended.some((set, r) => set.size < count - 1) && Date.now() < deadline) await sleep(20);
  const lost = [];
  received.forEach((bySender, r) => bySender.forEach((seqs, s) => {
    if (r === s) return;
    if (!ended[r].has(s)) lost.push(`receiver ${r} never got sender ${s}'s end marker`);
    const expected = sentCount[s];
    const inOrder = seqs.length === expected && seqs.every((v, k) => v === k);
    if (!inOrder) {
      const missing = expected - new Set(seqs).size;
      lost.push(`receiver ${r} from sender ${s}: ${seqs.length} of ${expected} (missing ${missing}, in order ${seqs.every((v, k) => k === 0 || v > seqs[k - 1])})`);
    }
  }));
  parentPort.postMessage({
    type: 'result', sent: sentCount, ackMs, deliveryMs, problems, lost, unexpected,
  });
  for (const s of sockets) { s.off('disconnect'); s.close(); }
});
