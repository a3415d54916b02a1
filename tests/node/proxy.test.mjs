// Behind a proxy: with --trust-forwarded-for, the per-address limit counts the client
// address from X-Forwarded-For (its last entry, the one the proxy wrote); without it,
// the header is ignored, so a client cannot dodge the limit by sending one.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Env, openSocket } from './helpers.mjs';

const viaProxy = (env, address) => openSocket(env.url, { extraHeaders: { 'X-Forwarded-For': `203.0.113.9, ${address}` } });

describe('--trust-forwarded-for', { timeout: 30_000 }, () => {
  const envs = [];
  after(async () => { for (const e of envs) await e.stop(); });

  it('counts connections per forwarded address when trusted', async () => {
    const env = await Env.start(['--trust-forwarded-for', '--max-connections-per-ip', 1]);
    envs.push(env);
    const a = await viaProxy(env, '10.0.0.1');
    const b = await viaProxy(env, '10.0.0.2');
    await assert.rejects(viaProxy(env, '10.0.0.1'), (err) => err.message.startsWith('rate_limited'));
    a.close();
    b.close();
  });

  it('ignores the header otherwise', async () => {
    const env = await Env.start(['--max-connections-per-ip', 1]);
    envs.push(env);
    const a = await viaProxy(env, '10.0.0.1');
    await assert.rejects(viaProxy(env, '10.0.0.2'), (err) => err.message.startsWith('rate_limited'));
    a.close();
  });
});
