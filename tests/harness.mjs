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
  const proc = spawn(binaryPath(), ['serve', '--host', '127.0.0.1', ...portArgs, ...extraArgs], {
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
