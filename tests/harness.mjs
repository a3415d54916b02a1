// The one shared harness for black-box tests: starts the real `streamchat` release binary
// on 127.0.0.1 with an OS-chosen port and stops it by its PID. Tests import from here.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Path of the release binary: $STREAMCHAT_BIN, else $CARGO_TARGET_DIR/release, else target/release. */
export function binaryPath() {
  if (process.env.STREAMCHAT_BIN) return process.env.STREAMCHAT_BIN;
  const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(repoRoot, 'target');
  const bin = path.join(targetDir, 'release', 'streamchat');
  if (!existsSync(bin)) throw new Error(`streamchat binary not found at ${bin}; run cargo build --release`);
  return bin;
}

/**
 * Starts `streamchat serve --host 127.0.0.1 --port PORT ...extraArgs` and resolves once it
 * prints `streamchat listening on http://ADDR`. Returns { url, port, proc, stdout(), stderr(), stop() }.
 * `port` defaults to 0 (the OS picks one); pass the port of a stopped server to restart it
 * in place. A `--port` in `extraArgs` also works and replaces the default.
 * `stop(signal)` sends the signal (default SIGTERM) and resolves with { code, signal } on exit.
 */
export async function startServer(extraArgs = [], { env = {}, timeoutMs = 10_000, port: listenPort = 0 } = {}) {
  const portArgs = extraArgs.includes('--port') ? [] : ['--port', String(listenPort)];
  // Test files open hundreds of connections a second from 127.0.0.1, far above what one
  // address may open by default (a defence against churn, tested on its own in
  // hostile/handshakes.test.mjs): unless a test sets it, the pace is lifted.
  const paceArgs = extraArgs.includes('--handshakes-per-ip-per-second') ? [] : ['--handshakes-per-ip-per-second', '100000'];
  const proc = spawn(binaryPath(), ['serve', '--host', '127.0.0.1', ...portArgs, ...paceArgs, ...extraArgs], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${err}`)), timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/streamchat listening on (https?:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then(({ code }) => { clearTimeout(timer); reject(new Error(`server exited with ${code} before listening:\n${err}`)); });
  });
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    proc,
    exited,
    stdout: () => out,
    stderr: () => err,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/** Resolves with the first emission of `event` on `socket` (optionally matching `pred`), or rejects after `ms`. */
export function nextEvent(socket, event, { pred = () => true, ms = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { socket.off(event, on); reject(new Error(`timed out waiting for ${event}`)); }, ms);
    function on(payload) {
      if (!pred(payload)) return;
      clearTimeout(timer);
      socket.off(event, on);
      resolve(payload);
    }
    socket.on(event, on);
  });
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once something answers `PING` with `+PONG` on 127.0.0.1:port. */
async function redisPing(port) {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { buf += d; if (buf.includes('+PONG')) done(true); });
  });
}

/**
 * Starts a throwaway `redis-server` on 127.0.0.1 (no persistence: nothing reaches disk)
 * on `port` (a free one by default). Returns { port, url, proc, stop(signal), cli(...args) }.
 */
export async function startRedis({ port } = {}) {
  for (const bin of ['redis-server', 'redis-cli']) {
    const found = (process.env.PATH ?? '').split(':').some((d) => existsSync(path.join(d, bin)));
    if (!found) throw new Error(`MISSING: ${bin}; install it with: apt-get install -y ${bin === 'redis-cli' ? 'redis-tools' : 'redis-server'}`);
  }
  const listenPort = port ?? await freePort();
  const proc = spawn('redis-server', [
    '--port', String(listenPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 5000;
  while (!(await redisPing(listenPort))) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`redis-server did not start on ${listenPort}`);
    await new Promise((r) => setTimeout(r, 30));
  }
  const { execFile } = await import('node:child_process');
  return {
    port: listenPort,
    url: `redis://127.0.0.1:${listenPort}`,
    proc,
    exited,
    /** Runs `redis-cli -p PORT ...args` and resolves with its stdout lines. */
    cli: (...args) => new Promise((resolve, reject) => {
      execFile('redis-cli', ['-p', String(listenPort), ...args], (err, stdout) => (err ? reject(err) : resolve(stdout.split('\n').filter(Boolean))));
    }),
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/**
 * Starts a throwaway Redis Cluster on 127.0.0.1: `masters` masters with one replica each
 * (`redis-server --cluster-enabled yes`, no persistence, a 2 s node timeout so a failover
 * takes seconds), joined with `redis-cli --cluster create`. Every port, the cluster bus's
 * included, is chosen free. Returns { url, nodes: [{ port, proc, stop(signal) }],
 * nodeCli(port, ...args), cli(...args), masterOf(key), stop() }: `url` is the
 * `redis-cluster://` URL naming every node; `cli` works as startRedis's does, on the whole
 * cluster (`redis-cli -c`, following redirects; `--scan` scans every node).
 */
export async function startRedisCluster({ masters = 3 } = {}) {
  const os = await import('node:os');
  const fs = await import('node:fs/promises');
  const { execFile } = await import('node:child_process');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'streamchat-redis-cluster-'));
  const run = (bin, args) => new Promise((resolve, reject) => {
    execFile(bin, args, { timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${bin} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout)));
  });
  const cli = (port, ...args) => run('redis-cli', ['-p', String(port), ...args]).then((out) => out.split('\n').filter(Boolean));
  const nodes = [];
  const stopAll = async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters * 2; i++) {
      const port = await freePort();
      const busPort = await freePort();
      // Each server its own folder: a replica saves the snapshot it syncs from as
      // dump.rdb in its folder and loads it from there, so replicas sharing a folder load
      // one another's masters' data (keys of slots they never held, others missing).
      const own = path.join(dir, String(port));
      await fs.mkdir(own);
      const proc = spawn('redis-server', [
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
        '--cluster-config-file', path.join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000', '--repl-diskless-sync-delay', '0',
        '--dir', own,
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
      nodes.push({
        port, proc, exited,
        async stop(signal = 'SIGTERM') {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
          return exited;
        },
      });
    }
    for (const n of nodes) {
      const deadline = Date.now() + 5000;
      while (!(await redisPing(n.port))) {
        if (Date.now() > deadline || n.proc.exitCode !== null) throw new Error(`redis-server (cluster) did not start on ${n.port}`);
        await new Promise((r) => setTimeout(r, 30));
      }
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', '1', '--cluster-yes']);
    const deadline = Date.now() + 20_000;
    for (const n of nodes) {
      while (!(await cli(n.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok\r')) {
        if (Date.now() > deadline) throw new Error('the Redis Cluster did not reach cluster_state:ok');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // cluster_state:ok comes before the replicas have their first copy: wait until every
    // master has its replica online and every replica's link is up, so that a test
    // starts with the copies a failover relies on.
    for (const n of nodes) {
      for (;;) {
        const info = (await cli(n.port, 'INFO', 'replication')).join('\n');
        if (/role:master/.test(info) ? /connected_slaves:1/.test(info) && /state=online/.test(info) : /master_link_status:up/.test(info)) break;
        if (Date.now() > deadline + 20_000) throw new Error(`the Redis Cluster's replication did not come up on ${n.port}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  const [first, ...rest] = nodes;
  const live = () => nodes.filter((n) => n.proc.exitCode === null && n.proc.signalCode === null);
  return {
    url: `redis-cluster://127.0.0.1:${first.port}?${rest.map((n) => `node=127.0.0.1:${n.port}`).join('&')}`,
    nodes,
    nodeCli: cli,
    async cli(...args) {
      if (args[0] === '--scan') return (await Promise.all(live().map((n) => cli(n.port, ...args)))).flat();
      return cli(live()[0].port, '-c', ...args);
    },
    /** The node (of `nodes`) that is the master of `key`'s slot now. */
    async masterOf(key) {
      for (const n of nodes) {
        if (n.proc.exitCode !== null || n.proc.signalCode !== null) continue;
        const slot = Number((await cli(n.port, 'CLUSTER', 'KEYSLOT', key))[0]);
        const myself = (await cli(n.port, 'CLUSTER', 'NODES')).find((l) => l.includes('myself'));
        if (!myself?.split(' ')[2].includes('master')) continue;
        const ranges = myself.split(' ').slice(8);
        if (ranges.some((r) => { const [a, b = a] = r.split('-').map(Number); return slot >= a && slot <= b; })) return n;
      }
      return null;
    },
    stop: stopAll,
  };
}

/** Path of the tansu broker (a Kafka-protocol broker): $TANSU_BIN or the CI tools folder. */
export function tansuPath() {
  const home = process.env.HOME ?? '/root';
  return process.env.TANSU_BIN ?? path.join(home, '.cache', 'streamchat-tools', 'bin', 'tansu');
}

/** Resolves once a TCP connect to 127.0.0.1:port succeeds. */
async function tcpOpen(port) {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setTimeout(300, () => { sock.destroy(); resolve(false); });
    sock.on('error', () => resolve(false));
    sock.on('connect', () => { sock.destroy(); resolve(true); });
  });
}

/**
 * Starts a throwaway Kafka-protocol broker (tansu, in-memory storage: nothing reaches
 * disk) on 127.0.0.1:port (a free one by default). Returns { port, brokers, proc, stop(signal) }.
 */
export async function startKafka({ port, advertisedPort } = {}) {
  if (!existsSync(tansuPath())) {
    throw new Error(`MISSING: the Kafka-protocol broker tansu (${tansuPath()}); install it with: scripts/setup && scripts/setup --wait tansu`);
  }
  const listenPort = port ?? await freePort();
  const url = `tcp://127.0.0.1:${listenPort}`;
  // `advertisedPort` makes clients talk to another port after bootstrap (a recording proxy).
  const advertised = `tcp://127.0.0.1:${advertisedPort ?? listenPort}`;
  const proc = spawn(tansuPath(), [
    'broker', '--listener-url', url, '--advertised-listener-url', advertised, '--storage-engine', 'memory://tansu/',
  ], { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const deadline = Date.now() + 10_000;
  while (!(await tcpOpen(listenPort))) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`tansu did not start on ${listenPort}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port: listenPort,
    brokers: `127.0.0.1:${listenPort}`,
    proc,
    exited,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

/**
 * A TCP proxy on 127.0.0.1 that forwards to `targetPort` and records every byte in both
 * directions: what a server (or Redis, or Kafka) receives and sends, as on the wire.
 * Returns { port, bytes() → Buffer of everything so far, close() }.
 */
export async function recordingProxy(targetPort, { port } = {}) {
  const net = await import('node:net');
  const chunks = [];
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (d) => { chunks.push(Buffer.from(d)); upstream.write(d); });
    upstream.on('data', (d) => { chunks.push(Buffer.from(d)); client.write(d); });
    const end = () => { client.destroy(); upstream.destroy(); sockets.delete(client); sockets.delete(upstream); };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', end);
    upstream.on('error', end);
  });
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(port ?? 0, '127.0.0.1', resolve); });
  return {
    port: server.address().port,
    bytes: () => Buffer.concat(chunks),
    close: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(() => resolve()); }),
  };
}
