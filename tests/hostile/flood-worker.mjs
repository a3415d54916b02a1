// A handshake flood in a worker thread, so that it never delays the honest clients'
// own measurements in the main thread. workerData: {url, total, inFlight, addresses}
// where `addresses` lists the loopback source addresses to use in turn. Posts back
// {statuses: {200: n, 429: n, ...}, bodies: {code: n}, retryAfter: bool, ms}.
import http from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';

const { url, total, inFlight, addresses } = workerData;
const target = new URL('/socket.io/?EIO=4&transport=polling', url);
// One address: thousands of handshakes over `inFlight` keep-alive TCP connections, as
// one hostile client would send them. Many addresses: a TCP connection per handshake,
// so that what is measured is the sessions, not a thousand idle HTTP connections.
const keepAlive = addresses.length === 1;
const agents = new Map(addresses.map((a) => [a, new http.Agent({ keepAlive, maxSockets: keepAlive ? inFlight : 1 })]));

const statuses = {};
const bodies = {};
let retryAfterOnEveryRefusal = true;
let sent = 0;
const started = Date.now();

function one(address) {
  return new Promise((resolve) => {
    const req = http.get(target, { agent: agents.get(address), localAddress: address }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        if (res.statusCode !== 200) {
          if (!Number(res.headers['retry-after'])) retryAfterOnEveryRefusal = false;
          let code = 'unparsed';
          try { code = JSON.parse(text).code; } catch { /* counted as unparsed */ }
          bodies[code] = (bodies[code] ?? 0) + 1;
        }
        resolve();
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => { statuses[e.code ?? e.message] = (statuses[e.code ?? e.message] ?? 0) + 1; resolve(); });
  });
}

async function lane() {
  while (sent < total) {
    const address = addresses[sent % addresses.length];
    sent += 1;
    await one(address);
  }
}

await Promise.all(Array.from({ length: inFlight }, lane));
for (const a of agents.values()) a.destroy();
parentPort.postMessage({ statuses, bodies, retryAfterOnEveryRefusal, ms: Date.now() - started });
