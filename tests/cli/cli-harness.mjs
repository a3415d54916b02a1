// Helpers of the terminal-client tests: `streamchat chat --json` as a child process whose
// stdout is read as one JSON event per line, and tmux sessions on a private socket for the
// full-screen UI. The server comes from ../harness.mjs (the release binary).
import { spawn, execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { binaryPath } from '../harness.mjs';

/**
 * Starts `streamchat chat LINK --name NAME --json`. Returns { proc, events, send(line),
 * next(pred, ms), end(), exited, stderr() }. `next` resolves with the first event not yet
 * consumed that matches `pred` (events before it stay available to later calls).
 */
/** Bots still running: `stopBots()` ends them (a failed test must not leave one behind,
 * which would keep the test process, and CI, waiting). */
const liveBots = new Set();

export async function stopBots() {
  await Promise.all([...liveBots].map((bot) => bot.stop()));
}

export function startBot(link, name, extraArgs = []) {
  const proc = spawn(binaryPath(), ['chat', link, '--name', name, '--json', ...extraArgs], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, STREAMCHAT_LOG: process.env.STREAMCHAT_LOG ?? 'warn', TZ: process.env.TZ ?? 'UTC' },
  });
  const events = [];
  const waiters = [];
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      event = { event: 'unparsable', line };
    }
    events.push(event);
    for (const waiter of [...waiters]) waiter();
  });
  // 'close', not 'exit': 'exit' can come before the last of stdout and stderr has been
  // read, and a caller that awaits `exited` then looks at `events` or `stderr()`.
  const exited = new Promise((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  let consumed = 0;
  const bot = {
    proc,
    events,
    exited,
    stderr: () => err,
    send(line) {
      proc.stdin.write(`${line}\n`);
    },
    end() {
      proc.stdin.end();
    },
    /** The first unconsumed event matching `pred` (by `event` name when a string). */
    next(pred, ms = 15_000) {
      const match = typeof pred === 'string' ? (e) => e.event === pred : pred;
      return new Promise((resolve, reject) => {
        let done = false;
        const check = () => {
          if (done) return;
          for (let i = consumed; i < events.length; i++) {
            if (match(events[i])) {
              consumed = i + 1;
              done = true;
              waiters.splice(waiters.indexOf(check), 1);
              clearTimeout(timer);
              resolve(events[i]);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          done = true;
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`${name}: timed out waiting for an event; got:\n${events.map((e) => JSON.stringify(e)).join('\n')}\nstderr:\n${err}`));
        }, ms);
        waiters.push(check);
        check();
      });
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.stdin.end();
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      liveBots.delete(bot);
    },
  };
  liveBots.add(bot);
  exited.then(() => liveBots.delete(bot));
  return bot;
}

/** Runs `streamchat ARGS…` to completion; returns { code, stdout, stderr }. Resolves on
 * 'close' (the process has exited and its stdout and stderr are read to the end), not on
 * 'exit', which can come first: a loaded machine then gave `room new` an empty link. */
export function runCli(args) {
  return new Promise((resolve) => {
    const proc = spawn(binaryPath(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A tmux server of our own (its own socket), so tests never touch anyone else's sessions. */
export class Tmux {
  constructor() {
    this.socket = `streamchat-test-${process.pid}-${Date.now()}`;
  }

  run(...args) {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  /** Starts `command` (an argv array) in a detached session of `width`×`height`. */
  start(name, command, { width = 140, height = 36, env = {} } = {}) {
    const quoted = command.map((a) => `'${String(a).replaceAll("'", "'\\''")}'`).join(' ');
    const vars = Object.entries(env).map(([k, v]) => `${k}='${v}'`).join(' ');
    // One tmux command list, so the pane is kept even when the program exits at once
    // (`waitFor` then reports a dead pane, not a confusing "no such window").
    this.run('new-session', '-d', '-s', name, '-x', String(width), '-y', String(height), `env ${vars} ${quoted}`,
      ';', 'set-option', '-t', name, 'remain-on-exit', 'on');
  }

  capture(name) {
    return this.run('capture-pane', '-p', '-t', name);
  }

  keys(name, ...keys) {
    this.run('send-keys', '-t', name, ...keys);
  }

  /** Types `text` literally (no key names), then presses Enter. */
  typeLine(name, text) {
    this.run('send-keys', '-t', name, '-l', text);
    this.run('send-keys', '-t', name, 'Enter');
  }

  /** Waits until the pane shows text matching `pattern`; returns the screen. */
  async waitFor(name, pattern, ms = 15_000) {
    const deadline = Date.now() + ms;
    let screen = '';
    while (Date.now() < deadline) {
      screen = this.capture(name);
      if (typeof pattern === 'string' ? screen.includes(pattern) : pattern.test(screen)) return screen;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`tmux pane ${name} never showed ${pattern}; last screen:\n${screen}`);
  }

  /** Whether the pane's process has exited (remain-on-exit keeps the pane). */
  dead(name) {
    return this.run('display-message', '-p', '-t', name, '#{pane_dead}').trim() === '1';
  }

  /** Ends the tmux server and removes its socket file (tmux 3.3 leaves it behind). */
  kill() {
    let socketPath;
    try {
      socketPath = this.run('display-message', '-p', '#{socket_path}').trim();
      this.run('kill-server');
    } catch {
      // Already gone: nothing to clean up.
    }
    if (socketPath) rmSync(socketPath, { force: true });
  }
}
