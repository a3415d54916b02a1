// Behind a proxy: with --trust-forwarded-for, the per-address limit counts the client
// address from X-Forwarded-For (its last entry, the one the proxy wrote); without it,
// the header is ignored, so a client cannot dodge the limit by sending one.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Env, assertRefusedForAddress, handshake, openSocket } from './helpers.mjs';

const forwarded = (address) => ({ 'X-Forwarded-For': `203.0.113.9, ${address}` });
const viaProxy = (env, address) => openSocket(env.url, { extraHeaders: forwarded(address) });
/** A connection from `address` (behind the proxy) is refused at its handshake. */
const refusedViaProxy = async (env, address) => {
  await assert.rejects(viaProxy(env, address), (err) => err.type === 'TransportError');
  assertRefusedForAddress(await handshake(env.url, { headers: forwarded(address) }));
};

describe('--trust-forwarded-for', { timeout: 30_000 }, () => {
  const envs = [];
  after(async () => { for (const e of envs) await e.stop(); });

  it('counts connections per forwarded address when trusted', async () => {
    const env = await Env.start(['--trust-forwarded-for', '--max-connections-per-ip', 1]);
    envs.push(env);
    const a = await viaProxy(env, '10.0.0.1');
    const b = await viaProxy(env, '10.0.0.2');
    await refusedViaProxy(env, '10.0.0.1');
    a.close();
    b.close();
  });

  it('ignores the header otherwise', async () => {
    const env = await Env.start(['--max-connections-per-ip', 1]);
    envs.push(env);
    const a = await viaProxy(env, '10.0.0.1');
    await refusedViaProxy(env, '10.0.0.2');
    a.close();
  });
});
