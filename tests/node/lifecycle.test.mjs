// Process lifecycle: start-up banner, graceful shutdown on SIGTERM.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Env, roomId, stopServer } from './helpers.mjs';

const SHUTDOWN_MS = 5000;
const SLACK_MS = 500; // process start/exit bookkeeping on a loaded 2-core machine

/** Sends SIGTERM and resolves with { code, signal, elapsed } (SIGKILL after 10 s, which fails the test). */
async function terminate(env) {
  const server = env.server;
  env.server = undefined;
  const t0 = Date.now();
  const result = await stopServer(server, 'SIGTERM', 10_000);
  return { ...result, elapsed: Date.now() - t0, stderr: server.stderr() };
}

describe('graceful shutdown', { timeout: 60_000 }, () => {
  it('an idle server exits 0 on SIGTERM within 5 s', async (t) => {
    const env = await Env.start();
    t.after(() => env.stop());
    const { code, signal, elapsed } = await terminate(env);
    assert.deepEqual({ code, signal }, { code: 0, signal: null });
    assert.ok(elapsed < SHUTDOWN_MS + SLACK_MS, `exited after ${elapsed} ms`);
  });

  it('SIGTERM: every client gets notice shutting_down, nobody sees a false leave, exit 0 within 5 s', async (t) => {
    const env = await Env.start();
    t.after(() => env.stop());
    const [r1, r2] = [roomId(), roomId()];
    const [a, b, c, idle] = await env.connectMany(4);
    await a.join(r1);
    await b.join(r1);
    await c.join(r1);
    await c.join(r2);
    await a.join(r2);
    const members = [a, b, c];
    const ids = new Map([a, b, c, idle].map((p) => [p.id, p]));

    const exit = terminate(env);
    const peers = [a, b, c, idle];
    const notices = await Promise.all(peers.map((p) => p.waitFor('notice', (n) => n.code === 'shutting_down', { ms: SHUTDOWN_MS })));
    for (const n of notices) assert.equal(typeof n.message, 'string');
    await Promise.all(peers.map((p) => p.waitDisconnect({ ms: SHUTDOWN_MS + SLACK_MS })));

    const { code, signal, elapsed, stderr } = await exit;
    assert.deepEqual({ code, signal }, { code: 0, signal: null }, `exit status; stderr:\n${stderr}`);
    assert.ok(elapsed < SHUTDOWN_MS + SLACK_MS, `exited after ${elapsed} ms`);

    // Presence during shutdown: members are not leaving, the server is. Nobody hears
    // anyone leave (or go away): they come back on the next server.
    assert.equal(ids.size, 4);
    for (const p of [...members, idle]) {
      const seen = p.events('presence', (e) => e.kind !== 'join');
      assert.deepEqual(seen, [], `presence seen by ${p.id} during shutdown`);
    }
  });
});
