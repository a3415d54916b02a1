// Behind a proxy: with --trust-forwarded-for, the per-address limit counts the client
// address from X-Forwarded-For (its last entry, the one the proxy wrote), but only on
// connections from a trusted proxy (--trusted-proxies, this machine by default); from
// anyone else, and without the flag, the header is ignored, so a client cannot dodge the
// limit by sending one.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Env, assertRefusedForAddress, handshake, openSocket } from './helpers.mjs';

const forwarded = (address) => ({ 'X-Forwarded-For': `203.0.113.9, ${address}` });
const viaProxy = (env, address, localAddress) => openSocket(env.url, { extraHeaders: forwarded(address), localAddress });
/** A connection from `address` (behind the proxy) is refused at its handshake. */
const refusedViaProxy = async (env, address, localAddress) => {
  await assert.rejects(viaProxy(env, address, localAddress), (err) => err.type === 'TransportError');
  assertRefusedForAddress(await handshake(env.url, { headers: forwarded(address), localAddress }));
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

  it('believes the header only from a trusted proxy', async () => {
    // 127.0.0.2 is the proxy; 127.0.0.1 is a client that sends the header itself.
    const env = await Env.start(['--trust-forwarded-for', '--trusted-proxies', '127.0.0.2', '--max-connections-per-ip', 1]);
    envs.push(env);
    const direct = await viaProxy(env, '10.0.0.1', '127.0.0.1');
    // Counted as 127.0.0.1, whatever it claims: a second claim from there is refused.
    await refusedViaProxy(env, '10.0.0.2', '127.0.0.1');
    const proxied = await viaProxy(env, '10.0.0.3', '127.0.0.2');
    const another = await viaProxy(env, '10.0.0.4', '127.0.0.2');
    await refusedViaProxy(env, '10.0.0.3', '127.0.0.2');
    for (const s of [direct, proxied, another]) s.close();
  });

  it('refuses to start with a proxy list it cannot read', async () => {
    await assert.rejects(Env.start(['--trust-forwarded-for', '--trusted-proxies', 'proxy.example']), /trusted-proxies/);
  });
});
