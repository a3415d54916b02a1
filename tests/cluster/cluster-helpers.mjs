// Helpers shared by the multi-node tests.
import { Peer, openSocket, sleep } from '../node/helpers.mjs';

/** Connects a peer (websocket) to a node started by `startServer`. */
export async function connectTo(node) {
  return new Peer(await openSocket(node.url));
}

/** GET /health of a node: { status, body }. */
export async function health(node) {
  const res = await fetch(new URL('/health', node.url));
  return { status: res.status, body: await res.json() };
}

/** Polls `check` (async) every 100 ms until it returns a truthy value, or fails after `ms`. */
export async function until(check, { ms = 15_000, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}
