#!/usr/bin/env node
// StreamChat's benchmark suite: the same workloads against StreamChat (one build or
// several), a plain Node socket.io 4 broadcast server (bench/node-server.mjs) and bare
// socketioxide (crates/bench-baseline), side by side, each server pinned to one CPU and
// the load generators to another. Run it through `scripts/bench`, which builds what is
// missing and raises the open-files limit first; see docs/benchmarks.md for what is
// measured and how to read it.
//
//   scripts/bench              full suite; appends a dated section to docs/benchmarks.md
//                              and keeps the raw JSON lines in bench/results/
//   scripts/bench --smoke      every workload for a few seconds at tiny sizes; checks
//                              that each run works; writes nothing to docs/
//
// Options: --servers streamchat,node,socketioxide   --workloads fanout,rooms,connections,files
//          --streamchat NAME=PATH[,NAME=PATH...] (several StreamChat builds, each a server
//          of its own, "StreamChat NAME"; default: STREAMCHAT_BIN or the target dir's)
//          --pin / --no-pin (servers on the second allowed CPU, generators on the first,
//          with taskset; on by default with 2 CPUs or more)
//          --no-docs (full mode without touching docs/)   --out FILE (raw JSON lines)
//          --samples (keep the 100 ms samples in the raw JSON lines)
// Environment: STREAMCHAT_BIN, BASELINE_BIN (socketioxide-baseline), GEN_BIN (the load
// generator's `streamchat`; default the first StreamChat build), CARGO_TARGET_DIR.
//
// Workloads (every server is started by this script, fresh for each workload, on
// 127.0.0.1 with port 0; every run is bounded in time and stops by itself):
//   fanout       one room of 500 members, 10 senders at 20 msg/s (~100,000 deliveries/s);
//                one room of 1,000, 4 senders at 10 and 25 msg/s (~40,000 and ~100,000/s)
//   rooms        10,000 clients in 1,000 rooms of 10, one sender per room
//   connections  N idle connections (N = 20,000, or less if the open-files limit
//                cannot be raised that far): RSS per connection and connect rate; then
//                N connections in rooms of 10 at 10,000 deliveries/s: latency
//   files        one sender, 5 receivers, a 200 MiB file in 1 MiB chunks, window 8
//
// While each run goes, a sampler reads the server's /proc (CPU, RSS), the load
// generator's /proc (CPU) and the server's /metrics (connections, messages accepted;
// node-server.mjs and socketioxide-baseline export the same names) every 100 ms. The
// sending window is found from those counters (first message accepted → last message
// accepted), so "server CPU per delivery" counts the relaying of messages, not the
// connect phase and its presence flood (reported separately, as the whole-run figure).

import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const TARGET_DIR = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache/streamchat-target");
const DOCS = path.join(ROOT, "docs/benchmarks.md");

// ---------------------------------------------------------------- arguments

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
for (const a of argv) {
  if (a === "--help" || a === "-h") {
    const lines = fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1);
    console.log(lines.slice(0, lines.findIndex((l) => !l.startsWith("//"))).map((l) => l.slice(3)).join("\n"));
    process.exit(0);
  }
}
const SMOKE = flag("smoke");
const WRITE_DOCS = !SMOKE && !flag("no-docs");
const KEEP_SAMPLES = flag("samples"); // keep every 100 ms sample in the raw results
const KINDS = option("servers", "streamchat,node,socketioxide").split(",");
const WORKLOADS = option("workloads", "fanout,rooms,connections,files").split(",");
for (const s of KINDS) if (!["streamchat", "node", "socketioxide"].includes(s)) die(`unknown server ${s}`);
for (const w of WORKLOADS) if (!["fanout", "rooms", "connections", "files"].includes(w)) die(`unknown workload ${w}`);

function die(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

// StreamChat builds: `--streamchat NAME=PATH,...`, else STREAMCHAT_BIN or the target
// dir's release binary, named plain "StreamChat".
const BUILDS = option("streamchat", null)
  ? option("streamchat").split(",").map((pair) => {
      const i = pair.indexOf("=");
      const name = pair.slice(0, i);
      if (i <= 0 || i === pair.length - 1 || !/^[\w.+-]+$/.test(name)) die(`--streamchat wants NAME=PATH[,NAME=PATH...], not ${pair}`);
      return { name, path: path.resolve(pair.slice(i + 1)) };
    })
  : [{ name: null, path: process.env.STREAMCHAT_BIN || path.join(TARGET_DIR, "release/streamchat") }];
if (new Set(BUILDS.map((b) => b.name)).size !== BUILDS.length) die("--streamchat: each build needs a name of its own");
const BASELINE_BIN = process.env.BASELINE_BIN || path.join(TARGET_DIR, "release/socketioxide-baseline");

/**
 * The servers of this run, in table order: one per StreamChat build, then Node, then
 * socketioxide (as listed in --servers). `id` names it in the raw results (`streamchat`
 * for the single default build, `streamchat:NAME` for a named one), `built` is the file
 * it is copied from at the start: other builds may replace a binary while the suite
 * runs, and every run uses the copy, so all figures come from one build of each.
 */
const SERVERS = KINDS.flatMap((kind) => {
  if (kind === "streamchat") {
    return BUILDS.map((b) => ({
      id: b.name ? `streamchat:${b.name}` : "streamchat",
      kind,
      label: b.name ? `StreamChat ${b.name}` : "StreamChat",
      built: b.path,
      bin: null,
    }));
  }
  if (kind === "node") return [{ id: "node", kind, label: "Node socket.io", built: null, bin: process.execPath }];
  return [{ id: "socketioxide", kind, label: "socketioxide", built: BASELINE_BIN, bin: null }];
});
const NODE = SERVERS.find((s) => s.kind === "node");
// The load generator: GEN_BIN's `streamchat`, else the first build's (copied too), so
// that every server is measured under the very same generator.
let GEN = null;
let BIN_DIR = null;

// Pinning: each server on one CPU, every load generator on another, so that neither
// competes with the other for a core (and the server's CPU is the one it was given).
// The suite's own sampler is not pinned (a few ms of CPU per second).
function allowedCpus() {
  try {
    const list = fs.readFileSync("/proc/self/status", "utf8").match(/^Cpus_allowed_list:\s*(\S+)/m)[1];
    return list.split(",").flatMap((r) => {
      const [a, b] = r.split("-").map(Number);
      return b === undefined ? [a] : Array.from({ length: b - a + 1 }, (_, k) => a + k);
    });
  } catch {
    return [];
  }
}
const CPUS = allowedCpus();
const PIN = flag("no-pin") ? false : flag("pin") || CPUS.length >= 2;
if (PIN && CPUS.length < 2) die(`--pin needs 2 CPUs; this process may use ${CPUS.join(",") || "?"}`);
const GEN_CPU = PIN ? CPUS[0] : null;
const SERVER_CPU = PIN ? CPUS[1] : null;
if (PIN) {
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
  } catch {
    die("--pin needs taskset (Debian package util-linux); or pass --no-pin");
  }
}
/** The command line that runs `cmd` on `cpu` (as is when not pinning). */
const pinned = (cpu, cmd, args) => (PIN ? ["taskset", ["-c", String(cpu), cmd, ...args]] : [cmd, args]);
// One CPU for the generator: one runtime thread is all it can use.
const GEN_THREADS = PIN ? 1 : 2;

// The open-files limit decides how many connections one process can hold: the load
// generator holds one per client, the server one per connection.
const FD_LIMIT = Number(execFileSync("bash", ["-c", "ulimit -n"]).toString().trim()) || 1024;
const MAX_CONNECTIONS = Math.min(20_000, FD_LIMIT - 500);

// Sizes. Payloads are 256 bytes (a short sealed text message), unsealed: the relay is
// measured, not the clients' crypto. Fan-out steps name the targets they serve
// (`role`): "cpu500" (CPU per delivery in the room of 500), "p99_1000" (the room of
// 1,000 at ~100,000 deliveries/s).
const SIZES = SMOKE
  ? {
      fanout: {
        steps: [
          { members: 30, senders: 3, rate: 10, role: "cpu500" },
          { members: 50, senders: 2, rate: 20, role: "p99_1000" },
        ],
        duration: 2, drain: 2,
      },
      rooms: { clients: 200, rooms: 20, rates: [2], duration: 2, drain: 2 },
      connections: { clients: Math.min(400, MAX_CONNECTIONS), idle: 3, duration: 2, deliveries: 200 },
      files: { mib: 8, receivers: 2, window: 8, repeat: 1 },
    }
  : {
      fanout: {
        steps: [
          { members: 500, senders: 10, rate: 20, role: "cpu500" },
          { members: 1000, senders: 4, rate: 10 },
          { members: 1000, senders: 4, rate: 25, role: "p99_1000" },
        ],
        duration: 10, drain: 5,
      },
      rooms: { clients: 10_000, rooms: 1000, rates: [10_000 / 9000, 30_000 / 9000], duration: 15, drain: 5 },
      connections: { clients: MAX_CONNECTIONS, idle: 8, duration: 20, deliveries: 10_000 },
      files: { mib: 200, receivers: 5, window: 8, repeat: 3 },
    };

const STREAMCHAT_LIMITS = [
  "--max-connections-per-ip", "100000",
  "--messages-per-second", "100000", "--message-burst", "100000",
  "--bytes-per-second", "1000000000", "--byte-burst", "1000000000",
  "--max-members-per-room", "100000",
  "--send-buffer-packets", "4096",
];

// ---------------------------------------------------------------- processes

const started = new Set(); // child processes this script started and has not seen exit

function track(child) {
  started.add(child);
  child.on("exit", () => started.delete(child));
  return child;
}

function killStarted() {
  for (const child of started) {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {}
  }
}
process.on("exit", () => {
  killStarted();
  if (BIN_DIR) fs.rmSync(BIN_DIR, { recursive: true, force: true });
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killStarted();
    process.exit(130);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cleanEnv() {
  // The server reads its options from the environment too: none of the caller's.
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("STREAMCHAT_") || ["HOST", "PORT", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "ENCRYPTION_KEY", "RUST_LOG"].includes(k)) continue;
    env[k] = v;
  }
  return env;
}

// CPUs each thread of `pid` may run on (/proc/PID/task/N/status), as one sorted list.
function threadCpus(pid) {
  try {
    const lists = new Set();
    const tasks = fs.readdirSync(`/proc/${pid}/task`);
    for (const t of tasks) {
      const m = fs.readFileSync(`/proc/${pid}/task/${t}/status`, "utf8").match(/^Cpus_allowed_list:\s*(\S+)/m);
      if (m) lists.add(m[1]);
    }
    return { cpus: [...lists].sort().join(" + "), threads: tasks.length };
  } catch {
    return null;
  }
}

/**
 * Follows a just-started process until `taskset` has exec'd the real program (its comm
 * is no longer "taskset"), then records which CPUs its threads may use in `into.cpus`.
 */
function watchCpus(pid, into) {
  const end = Date.now() + 5000;
  const look = () => {
    let comm = null;
    try {
      comm = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
      return;
    }
    if (comm === "taskset" && Date.now() < end) return void setTimeout(look, 20);
    const read = () => {
      const c = threadCpus(pid);
      if (c) Object.assign(into, c);
    };
    // Now (a short run may be over soon), and again once the program's own threads (a
    // runtime's workers) exist.
    read();
    setTimeout(read, 300);
  };
  look();
}

async function startServer(inst) {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "streamchat-bench-")); // no stray .env
  const command = {
    streamchat: [inst.bin, ["serve", "--host", "127.0.0.1", "--port", "0", ...STREAMCHAT_LIMITS]],
    node: [process.execPath, [path.join(HERE, "node-server.mjs"), "--host", "127.0.0.1", "--port", "0"]],
    socketioxide: [inst.bin, ["--host", "127.0.0.1", "--port", "0"]],
  }[inst.kind];
  const [cmd, args] = pinned(SERVER_CPU, ...command);
  const child = track(spawn(cmd, args, { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] }));
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${inst.label} did not start in 30 s:\n${log}`)), 30_000);
    const onData = (d) => {
      log = (log + d).slice(-4000);
      const m = log.match(/listening on (http:\/\/[^\s]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", (d) => (log = (log + d).slice(-4000)));
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${inst.label} exited with ${code}:\n${log}`));
    });
  });
  child.stdout.removeAllListeners("data");
  child.stdout.resume();
  child.stderr.resume();
  // node-server.mjs and socketioxide-baseline serve their counters from a thread of
  // their own too, readable while the main thread is saturated; StreamChat's /metrics
  // runs on its own runtime's threads.
  const metricsUrl = (log.match(/metrics on (http:\/\/[^\s]+)/) || [])[1] || `${url}/metrics`;
  const server = { kind: inst.kind, id: inst.id, label: inst.label, child, pid: child.pid, url, metricsUrl, cwd };
  // Every thread of a pinned server (Node's worker too) must be on SERVER_CPU alone.
  server.cpus = threadCpus(child.pid);
  if (!PIN_SEEN.has(inst.id)) {
    PIN_SEEN.set(inst.id, server.cpus);
    console.error(`bench: ${inst.label} (pid ${child.pid}): Cpus_allowed_list ${server.cpus?.cpus ?? "?"} (${server.cpus?.threads ?? "?"} threads)`);
  }
  if (PIN && server.cpus?.cpus !== String(SERVER_CPU)) {
    await stopServer(server);
    throw new Error(`${inst.label} is not pinned to CPU ${SERVER_CPU}: its threads may use ${server.cpus?.cpus ?? "?"}`);
  }
  return server;
}
// Server id -> the CPUs its threads were allowed, as first seen (for the report).
const PIN_SEEN = new Map();

async function stopServer(server) {
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    process.kill(child.pid, "SIGTERM");
    if ((await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)])) === false) {
      process.kill(child.pid, "SIGKILL");
      await exited;
    }
  }
  fs.rmSync(server.cwd, { recursive: true, force: true });
}

/** Runs a command to its end (or kills it at `timeoutMs`); returns its output. */
function run(cmd, args, timeoutMs, onStart) {
  return new Promise((resolve) => {
    const child = track(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: cleanEnv() }));
    if (onStart) onStart(child.pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-8000)));
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {}
    }, timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function lastJson(text) {
  const line = text.trim().split("\n").reverse().find((l) => l.startsWith("{"));
  try {
    return line ? JSON.parse(line) : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- /proc and /metrics

/** CPU seconds of `pid`: `total` (utime + stime) and `user` (utime); USER_HZ is 100. */
function cpuTimes(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(f[11]) / 100, total: (Number(f[11]) + Number(f[12])) / 100 };
  } catch {
    return { user: null, total: null };
  }
}

function cpuSeconds(pid) {
  return cpuTimes(pid).total;
}

function memoryKib(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (name) => Number((text.match(new RegExp(`^${name}:\\s+(\\d+)`, "m")) || [])[1]);
    return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
  } catch {
    return { rss: null, hwm: null };
  }
}

async function metrics(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    const text = await res.text();
    const value = (name) => Number((text.match(new RegExp(`^${name} (\\d+)`, "m")) || [])[1]);
    return { conns: value("streamchat_connections"), msgs: value("streamchat_messages_relayed_total") };
  } catch {
    return { conns: NaN, msgs: NaN };
  }
}

/** Machine-wide CPU seconds from /proc/stat: busy at nice 0 or below, niced, idle. */
function machineCpu() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
  return { busy: (user + system + irq + softirq + steal) / 100, niced: nice / 100, idle: (idle + iowait) / 100 };
}

function loadavg() {
  return fs.readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).map(Number);
}

/** Samples the server (and the load generator, once its PID is set) every `ms`. */
function sampler(server, ms = 100) {
  const s = { samples: [], benchPid: null, stopped: false };
  const t0 = performance.now();
  s.done = (async () => {
    while (!s.stopped) {
      const m = await metrics(server.metricsUrl);
      const mem = memoryKib(server.pid);
      const mc = machineCpu();
      const cpu = cpuTimes(server.pid);
      const bench = s.benchPid ? cpuTimes(s.benchPid) : { user: null, total: null };
      s.samples.push({
        busy: mc.busy,
        niced: mc.niced,
        idle: mc.idle,
        t: (performance.now() - t0) / 1000,
        scpu: cpu.total,
        sucpu: cpu.user,
        bcpu: bench.total,
        bucpu: bench.user,
        rss: mem.rss,
        hwm: mem.hwm,
        conns: m.conns,
        msgs: m.msgs,
      });
      await sleep(ms);
    }
  })();
  s.elapsed = () => (performance.now() - t0) / 1000;
  s.stop = async () => {
    s.stopped = true;
    await s.done;
    return s.samples;
  };
  return s;
}

/** Waits until the server has no connection left and its CPU is quiet (teardown done). */
async function settle(server, maxMs = 90_000) {
  const end = Date.now() + maxMs;
  let last = cpuSeconds(server.pid);
  while (Date.now() < end) {
    await sleep(500);
    const m = await metrics(server.metricsUrl);
    const now = cpuSeconds(server.pid);
    if (m.conns === 0 && now - last < 0.03) return true;
    last = now;
  }
  return false;
}

/**
 * The sending window in the samples. Each sample reads the server's counters over HTTP
 * and then its CPU, so a sample's CPU covers at least the work behind its counters.
 * With senders: from the last sample before the first accepted message to the first
 * sample showing the final message count (both servers write a message to every
 * receiver's queue before counting it; only StreamChat's socket writers may still be
 * busy then, and it was never behind in these runs). Without senders (idle): from the
 * first sample with every client connected to the last one before any left.
 */
function findWindow(samples, report, benchExit = null) {
  if (samples.length < 3 || !report) return null;
  const m0 = samples[0].msgs;
  let start;
  let end = -1;
  if (report.senders > 0) {
    const first = samples.findIndex((s) => s.msgs > m0);
    if (first < 0) return null;
    start = Math.max(0, first - 1);
    const final = Math.max(...samples.map((s) => (Number.isFinite(s.msgs) ? s.msgs : 0)));
    end = samples.findIndex((s, i) => i > start && s.msgs === final);
  } else {
    start = samples.findIndex((s) => s.conns >= report.connected);
    if (start < 0) return null;
    end = samples.length - 1;
    for (let i = start + 1; i < samples.length; i++) {
      if (samples[i].conns < samples[start].conns - report.disconnected) {
        end = i - 1;
        break;
      }
    }
  }
  if (end <= start) return null;
  const a = samples[start];
  const b = samples[end];
  const wall = b.t - a.t;
  // The generator's CPU: its last reading up to the end sample (it may have exited).
  let bEnd = null;
  for (let i = end; i >= start && bEnd === null; i--) bEnd = samples[i].bcpu;
  const benchCpu = a.bcpu !== null && bEnd !== null ? bEnd - a.bcpu : null;
  let bUserEnd = null;
  for (let i = end; i >= start && bUserEnd === null; i--) bUserEnd = samples[i].bucpu;
  const benchUser = a.bucpu !== null && bUserEnd !== null ? bUserEnd - a.bucpu : null;
  return {
    start_s: round(a.t, 2),
    seconds: round(wall, 2),
    server_cpu_s: round(b.scpu - a.scpu, 2),
    // In user space only: the rest is the kernel, mostly its TCP path, which on
    // loopback also does the receiving side's work (see docs/benchmarks.md).
    server_user_cpu_s: round(b.sucpu - a.sucpu, 2),
    server_cores: round((b.scpu - a.scpu) / wall, 2),
    bench_cpu_s: round(benchCpu, 2),
    bench_user_cpu_s: round(benchUser, 2),
    bench_cores: round(benchCpu / wall, 2),
    // Everything else on the machine (other engineers' builds and tests, this suite):
    // CPU at normal priority not used by the server or the generator, and niced CPU.
    other_cores: benchCpu !== null ? round((b.busy - a.busy - (b.scpu - a.scpu) - benchCpu) / wall, 2) : null,
    niced_cores: round((b.niced - a.niced) / wall, 2),
    idle_cores: round((b.idle - a.idle) / wall, 2),
    rss_end_kib: b.rss,
    // The server accepted its last message more than a second after the generator had
    // exited, or acks went missing: it was working through a backlog, relaying to
    // clients that were gone, so its CPU per counted delivery is not comparable.
    backlog: (benchExit !== null && b.t > benchExit + 1) || (report.senders > 0 && report.acked < report.sent),
    // Clients had started leaving by the end sample: teardown work may be included.
    overlaps_teardown: Number.isFinite(b.conns) && b.conns < a.conns - report.disconnected,
  };
}

/**
 * The connect phase in the samples: from the first sample that sees the generator to
 * the first one with every client connected. The server's and the generator's CPU in
 * it, beside the connect + join rate.
 */
function findConnectWindow(samples, report) {
  if (!report) return null;
  const start = samples.findIndex((s) => s.bcpu !== null);
  if (start < 0) return null;
  const end = samples.findIndex((s, i) => i > start && s.conns >= report.connected);
  if (end < 0) return null;
  const a = samples[start];
  const b = samples[end];
  const wall = b.t - a.t;
  if (!(wall > 0) || b.bcpu === null) return null;
  return {
    seconds: round(wall, 2),
    server_cpu_s: round(b.scpu - a.scpu, 2),
    server_cores: round((b.scpu - a.scpu) / wall, 2),
    bench_cpu_s: round(b.bcpu - a.bcpu, 2),
    bench_cores: round((b.bcpu - a.bcpu) / wall, 2),
  };
}

function round(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---------------------------------------------------------------- runs

const results = [];
const failures = [];
const RUN_STAMP = new Date().toISOString().replace(/[:]/g, "").replace(/\..*/, "Z");
const OUT = option("out", SMOKE
  ? path.join(os.tmpdir(), `streamchat-bench-smoke-${RUN_STAMP}.jsonl`)
  : path.join(HERE, "results", `${RUN_STAMP}.jsonl`));
fs.mkdirSync(path.dirname(OUT), { recursive: true });

function record(entry) {
  results.push(entry);
  fs.appendFileSync(OUT, JSON.stringify(entry) + "\n");
}

function check(entry, ok, why) {
  if (!ok) {
    failures.push(`${entry.workload}/${entry.server}${entry.step !== undefined ? `/${entry.step}` : ""}: ${why}`);
    entry.failed = why;
  }
}

/** What every entry says about the server and the pinning, whatever the workload. */
function serverFields(server) {
  return {
    server: server.id, kind: server.kind, label: server.label,
    pinned: PIN, server_cpus: server.cpus?.cpus ?? null,
  };
}

async function benchRun(server, workload, step, b) {
  const args = [
    "bench", "--url", server.url, "--server-pid", String(server.pid), "--threads", String(GEN_THREADS),
    "--clients", String(b.clients), "--rooms", String(b.rooms), "--senders", String(b.senders),
    "--rate", String(b.rate), "--payload", "256", "--duration", String(b.duration),
    "--drain", String(b.drain ?? 3), "--connect-timeout", String(b.connectTimeout ?? 120),
  ];
  const load = loadavg();
  const s = sampler(server);
  await sleep(300);
  const timeoutMs = ((b.connectTimeout ?? 120) + b.duration + (b.drain ?? 3) + 90) * 1000;
  const generator = {};
  const out = await run(...pinned(GEN_CPU, GEN, args), timeoutMs, (pid) => {
    s.benchPid = pid;
    watchCpus(pid, generator);
  });
  const benchExit = s.elapsed();
  await sleep(300);
  const samples = await s.stop();
  const report = lastJson(out.stdout);
  const window = findWindow(samples, report, benchExit);
  const entry = {
    workload, ...serverFields(server), generator_cpus: generator.cpus ?? null, step,
    load_before: load, args: args.slice(1).join(" "),
    report, window, connect_window: findConnectWindow(samples, report),
    rss_before_kib: samples[0]?.rss ?? null,
  };
  if (KEEP_SAMPLES) entry.samples = samples;
  if (PIN) check(entry, entry.generator_cpus === String(GEN_CPU), `the generator was not pinned to CPU ${GEN_CPU} (${entry.generator_cpus ?? "not seen"})`);
  if (!report) {
    check(entry, false, `no report (exit ${out.code ?? out.signal}): ${out.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    return entry;
  }
  const r = report;
  const delivered = r.delivered || 0;
  const perDelivery = (cpu) => (window && !window.backlog && delivered > 0 && Number.isFinite(cpu) ? round((cpu / delivered) * 1e6, 2) : null);
  entry.derived = {
    connect_per_s: r.connect_s > 0 ? round(r.connected / r.connect_s, 0) : null,
    delivered_per_s: r.delivered_per_s,
    p50_ms: r.latency_ms.p50,
    p99_ms: r.latency_ms.p99,
    loss: r.loss,
    us_per_delivery: perDelivery(window?.server_cpu_s),
    user_us_per_delivery: perDelivery(window?.server_user_cpu_s),
    // The generator's CPU per delivery in the same window (it receives every delivery).
    gen_us_per_delivery: perDelivery(window?.bench_cpu_s),
    gen_user_us_per_delivery: perDelivery(window?.bench_user_cpu_s),
    us_per_delivery_whole_run: r.server && r.server.cpu_s !== null && delivered > 0 ? round((r.server.cpu_s / delivered) * 1e6, 2) : null,
    generator_short: r.planned > 0 && r.sent < 0.98 * r.planned, // the generator missed send ticks
  };
  check(entry, r.connected >= 0.95 * r.clients, `only ${r.connected} of ${r.clients} connected (${JSON.stringify(r.refused)})`);
  if (b.senders > 0) {
    check(entry, r.acked > 0 && delivered > 0, `nothing delivered (${JSON.stringify(r.refused)})`);
    check(entry, r.bad_payloads === 0, `${r.bad_payloads} bad payloads`);
  }
  return entry;
}

async function fanout(inst) {
  const z = SIZES.fanout;
  const server = await startServer(inst);
  try {
    for (const [i, st] of z.steps.entries()) {
      await settle(server);
      const entry = await benchRun(server, "fanout", i, {
        clients: st.members, rooms: 1, senders: st.senders, rate: st.rate, duration: z.duration, drain: z.drain,
      });
      Object.assign(entry, {
        members: st.members, senders_per_room: st.senders, rate: st.rate, role: st.role ?? null,
        planned_deliveries_per_s: round(st.senders * st.rate * (st.members - 1), 0),
      });
      record(entry);
      progress(entry);
    }
  } finally {
    await stopServer(server);
  }
}

async function rooms(inst) {
  const z = SIZES.rooms;
  const server = await startServer(inst);
  try {
    for (const [i, rate] of z.rates.entries()) {
      await settle(server);
      const perRoom = z.clients / z.rooms;
      const entry = await benchRun(server, "rooms", i, {
        clients: z.clients, rooms: z.rooms, senders: z.rooms, rate: round(rate, 4), duration: z.duration, drain: z.drain,
      });
      Object.assign(entry, {
        members: perRoom, senders_per_room: 1, rate: round(rate, 4),
        planned_deliveries_per_s: round(z.rooms * round(rate, 4) * (perRoom - 1), 0),
      });
      record(entry);
      progress(entry);
    }
  } finally {
    await stopServer(server);
  }
}

async function connections(inst) {
  const z = SIZES.connections;
  const roomsN = Math.floor(z.clients / 10);
  // Idle: every client connected and in a room of 10, nobody sending.
  let server = await startServer(inst);
  try {
    await settle(server, 10_000);
    const idle = await benchRun(server, "connections", "idle", {
      clients: z.clients, rooms: roomsN, senders: 0, rate: 1, duration: z.idle, drain: 0,
    });
    if (idle.report && idle.window) {
      const per = (idle.window.rss_end_kib - idle.rss_before_kib) / idle.report.connected;
      idle.derived.rss_idle_kib = idle.window.rss_end_kib;
      idle.derived.rss_per_connection_kib = round(per, 2);
    } else {
      check(idle, false, "no idle window found");
    }
    record(idle);
    progress(idle);
  } finally {
    await stopServer(server);
  }
  // Loaded: the same connections, one sender per room, at the target delivery rate.
  server = await startServer(inst);
  try {
    await settle(server, 10_000);
    const rate = round(z.deliveries / (roomsN * 9), 4);
    const loaded = await benchRun(server, "connections", "loaded", {
      clients: z.clients, rooms: roomsN, senders: roomsN, rate, duration: z.duration, drain: 5,
    });
    Object.assign(loaded, { members: 10, senders_per_room: 1, rate, planned_deliveries_per_s: round(roomsN * rate * 9, 0) });
    record(loaded);
    progress(loaded);
  } finally {
    await stopServer(server);
  }
}

async function files(inst) {
  const z = SIZES.files;
  for (let i = 0; i < z.repeat; i++) {
    const server = await startServer(inst); // fresh: its VmHWM is the start-up footprint
    try {
      await settle(server, 10_000);
      const load = loadavg();
      const generator = {};
      const out = await run(...pinned(GEN_CPU, process.execPath, [
        path.join(HERE, "file-relay.mjs"), "--url", server.url, "--server-pid", String(server.pid),
        "--mib", String(z.mib), "--receivers", String(z.receivers), "--window", String(z.window), "--timeout", "120",
      ]), 180_000, (pid) => watchCpus(pid, generator));
      const report = lastJson(out.stdout);
      const entry = { workload: "files", ...serverFields(server), generator_cpus: generator.cpus ?? null, step: i, load_before: load, report };
      if (PIN) check(entry, entry.generator_cpus === String(GEN_CPU), `file-relay.mjs was not pinned to CPU ${GEN_CPU} (${entry.generator_cpus ?? "not seen"})`);
      if (!report) check(entry, false, `no report (exit ${out.code ?? out.signal}): ${out.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      else {
        check(entry, report.complete, `incomplete: ${report.error}`);
        // Both CPU figures cover the transfer (first chunk sent to last received).
        const seconds = report.seconds > 0 ? report.seconds : NaN;
        entry.derived = {
          mb_per_s: report.mb_per_s_delivered,
          peak_growth_mib: report.server ? round(report.server.peak_growth_kib / 1024, 1) : null,
          server_cpu_s: report.server?.cpu_s ?? null,
          relay_cpu_s: report.cpu_s,
          server_cores: round((report.server?.cpu_s ?? NaN) / seconds, 2),
          relay_cores: round(report.cpu_s / seconds, 2),
        };
      }
      record(entry);
      progress(entry);
    } finally {
      await stopServer(server);
    }
  }
}

function progress(e) {
  const d = e.derived || {};
  const bits = [`[${new Date().toISOString().slice(11, 19)}] ${e.workload}/${e.step} ${e.label}`, `load ${e.load_before?.join(" ")}`];
  if (e.workload === "files") bits.push(`${d.mb_per_s} MB/s`, `peak growth ${d.peak_growth_mib} MiB`, `server ${d.server_cores} cores, relay ${d.relay_cores}`);
  else if (e.step === "idle") bits.push(`${e.report?.connected} conns`, `${d.connect_per_s}/s`, `${d.rss_per_connection_kib} KiB/conn`, `connecting: server ${e.connect_window?.server_cores} cores, bench ${e.connect_window?.bench_cores}`);
  else bits.push(`${d.delivered_per_s} deliveries/s`, `p50 ${d.p50_ms} p99 ${d.p99_ms} ms`, `${d.us_per_delivery} µs/delivery (bench ${d.gen_us_per_delivery})`,
    `server ${e.window?.server_cores} cores, bench ${e.window?.bench_cores}, others ${e.window?.other_cores} (+${e.window?.niced_cores} niced), idle ${e.window?.idle_cores}`);
  if (e.failed) bits.push(`FAILED: ${e.failed}`);
  console.error(bits.join(" · "));
}

// ---------------------------------------------------------------- report

const fmt = (x, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 }));
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${fmt(a / b, 2)}×` : "–");
const cores = (x) => (Number.isFinite(x) ? `${fmt(x, 2)} cores` : "–");
const micros = (x) => (Number.isFinite(x) ? `${fmt(x, 2)} µs` : "–");
const find = (workload, server, step) => results.find((e) => e.workload === workload && e.server === server && e.step === step);
const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : null;
};
const stepsOf = (workload) => [...new Set(results.filter((e) => e.workload === workload).map((e) => e.step))];
const anyAt = (workload, step) => results.find((e) => e.workload === workload && e.step === step);
// Every server but Node gets a ratio column to Node.
const COMPARED = SERVERS.filter((s) => s !== NODE);

/** "1 room × 500, 10 senders × 20 msg/s: 99,800/s" and the like. */
function stepName(e) {
  if (!e) return "?";
  const rate = `${fmt(e.rate, 2)} msg/s`;
  if (e.workload === "fanout") return `fan-out 1 room × ${fmt(e.members, 0)}, ${e.senders_per_room} senders × ${rate}: ${fmt(e.planned_deliveries_per_s, 0)}/s`;
  const clients = e.report?.clients ?? (e.workload === "rooms" ? SIZES.rooms.clients : SIZES.connections.clients);
  return `${fmt(clients, 0)} clients in rooms of ${e.members}, 1 sender per room × ${rate}: ${fmt(e.planned_deliveries_per_s, 0)}/s`;
}

function messageRows(workload, only = null) {
  const rows = [];
  rows.push("| step | server | delivered/s | p50 ms | p99 ms | loss | server CPU µs/delivery (window) | (whole run) | generator CPU µs/delivery | server cores | generator cores | other cores (niced) | idle cores | sent/planned | notes |");
  rows.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
  for (const step of stepsOf(workload).filter((s) => only === null || s === only)) {
    for (const server of SERVERS) {
      const e = find(workload, server.id, step);
      if (!e) continue;
      const r = e.report || {};
      const d = e.derived || {};
      const w = e.window || {};
      const notes = [];
      if (e.failed) notes.push(`failed: ${e.failed}`);
      if (d.generator_short) notes.push("generator missed ticks");
      if (r.skipped) notes.push(`${fmt(r.skipped, 0)} ticks skipped (64 unacked)`);
      if (r.disconnected) notes.push(`${r.disconnected} cut off`);
      if (e.window?.overlaps_teardown) notes.push("window overlaps teardown");
      if (e.window?.backlog) notes.push("server still behind when the generator stopped: CPU/delivery not comparable");
      const refused = Object.entries(r.refused || {}).map(([p, c]) => `${p}: ${Object.entries(c).map(([k, v]) => `${k} ${v}`).join(", ")}`);
      if (refused.length) notes.push(`refused ${refused.join("; ")}`);
      if (e.pinned) {
        // Each has one CPU of its own: at 1 core it set the pace.
        if (w.server_cores >= 0.95) notes.push("server's CPU saturated");
        if (w.bench_cores >= 0.95) notes.push("generator's CPU saturated");
      } else if (Number.isFinite(w.server_cores) && Number.isFinite(w.bench_cores) && w.server_cores + w.bench_cores >= 1.8) {
        notes.push("machine saturated (2 cores)");
      }
      const name = `${fmt(e.members, 0)} members, ${e.senders_per_room === 1 && workload !== "fanout" ? "1 sender per room" : `${e.senders_per_room} senders`} × ${fmt(e.rate, 2)}/s: ${fmt(e.planned_deliveries_per_s, 0)}/s planned`;
      rows.push(`| ${name} | ${server.label} | ${fmt(d.delivered_per_s, 0)} | ${fmt(d.p50_ms, 1)} | ${fmt(d.p99_ms, 1)} | ${fmt((d.loss ?? NaN) * 100, 2)}% | ${fmt(d.us_per_delivery, 2)} | ${fmt(d.us_per_delivery_whole_run, 2)} | ${fmt(d.gen_us_per_delivery, 2)} | ${fmt(w.server_cores, 2)} | ${fmt(w.bench_cores, 2)} | ${fmt(w.other_cores, 2)} (${fmt(w.niced_cores, 2)}) | ${fmt(w.idle_cores, 2)} | ${fmt(r.sent, 0)}/${fmt(r.planned, 0)} | ${notes.join("; ")} |`);
    }
  }
  return rows;
}

/**
 * One row per figure: each server's figure with, beside it ("gen."), the load
 * generator's CPU over the same window (µs per delivery beside CPU per delivery, cores
 * otherwise), then each server's figure over Node's.
 */
function summary() {
  const head = ["workload", "metric", ...SERVERS.flatMap((s) => [s.label, "gen."]), ...COMPARED.map((s) => `${s.label} / Node`)];
  const align = ["---", "---", ...SERVERS.flatMap(() => ["---:", "---:"]), ...COMPARED.map(() => "---:")];
  const rows = [`| ${head.join(" | ")} |`, `|${align.join("|")}|`];
  // pick(serverId) -> [figure, generator cell] (or undefined: not measured)
  const add = (name, metric, pick, digits = 1) => {
    const value = (id) => (pick(id) ?? [null])[0];
    const nodeValue = NODE ? value(NODE.id) : null;
    const cells = [name, metric];
    for (const s of SERVERS) {
      const [v, g] = pick(s.id) ?? [null, null];
      cells.push(fmt(v, digits), g ?? "–");
    }
    for (const s of COMPARED) cells.push(ratio(value(s.id), nodeValue));
    rows.push(`| ${cells.join(" | ")} |`);
  };
  const messageFigures = (name, at) => {
    add(name, "delivered/s (higher is better)", (id) => at(id) && [at(id).derived?.delivered_per_s, cores(at(id).window?.bench_cores)], 0);
    add(name, "p99 latency ms", (id) => at(id) && [at(id).derived?.p99_ms, cores(at(id).window?.bench_cores)]);
    add(name, "server CPU µs per delivery", (id) => at(id) && [at(id).derived?.us_per_delivery, micros(at(id).derived?.gen_us_per_delivery)], 2);
    add(name, "of which in user space", (id) => at(id) && [at(id).derived?.user_us_per_delivery, micros(at(id).derived?.gen_user_us_per_delivery)], 2);
    add(name, "server CPU cores in the window", (id) => at(id) && [at(id).window?.server_cores, cores(at(id).window?.bench_cores)], 2);
  };
  for (const w of ["fanout", "rooms"]) {
    for (const step of stepsOf(w)) messageFigures(stepName(anyAt(w, step)), (id) => find(w, id, step));
  }
  if (results.some((e) => e.workload === "connections")) {
    const idle = (id) => find("connections", id, "idle");
    const n = anyAt("connections", "idle")?.report?.clients;
    const name = `connections ${fmt(n, 0)} idle`;
    add(name, "RSS per idle connection KiB", (id) => idle(id) && [idle(id).derived?.rss_per_connection_kib, cores(idle(id).window?.bench_cores)], 2);
    add(name, "connect + join per second (higher is better)", (id) => idle(id) && [idle(id).derived?.connect_per_s, cores(idle(id).connect_window?.bench_cores)], 0);
    add(name, "server CPU cores while connecting", (id) => idle(id) && [idle(id).connect_window?.server_cores, cores(idle(id).connect_window?.bench_cores)], 2);
    if (anyAt("connections", "loaded")) {
      messageFigures(`connections ${fmt(n, 0)} loaded: ${stepName(anyAt("connections", "loaded"))}`, (id) => find("connections", id, "loaded"));
    }
  }
  if (results.some((e) => e.workload === "files")) {
    const f = (id, key) => median(results.filter((e) => e.workload === "files" && e.server === id).map((e) => e.derived?.[key]));
    const some = (id) => results.some((e) => e.workload === "files" && e.server === id);
    const name = `files ${SIZES.files.mib} MiB → ${SIZES.files.receivers}`;
    add(name, "MB/s delivered, median (higher is better)", (id) => some(id) && [f(id, "mb_per_s"), cores(f(id, "relay_cores"))], 0);
    add(name, "server peak RSS growth MiB, median", (id) => some(id) && [f(id, "peak_growth_mib"), cores(f(id, "relay_cores"))], 1);
    add(name, "server CPU cores during the transfer, median", (id) => some(id) && [f(id, "server_cores"), cores(f(id, "relay_cores"))], 2);
  }
  return rows;
}

/** Issue #17's targets, for each StreamChat build, from the figures above. */
function targets() {
  const rows = ["| target | build | figure | verdict |", "|---|---|---|---|"];
  const verdict = (ok) => (ok === null ? "not measured" : ok ? "**met**" : "**not met**");
  const fin = Number.isFinite;
  const builds = SERVERS.filter((s) => s.kind === "streamchat");
  const nodeOf = (w, step) => (NODE ? find(w, NODE.id, step) : null);
  const perStep = (w, filter, text, judge) => {
    for (const step of stepsOf(w)) {
      if (!filter(anyAt(w, step))) continue;
      for (const b of builds) {
        const e = find(w, b.id, step);
        const n = nodeOf(w, step);
        if (!e) continue;
        const [figure, ok] = judge(e, n);
        rows.push(`| ${text(e)} | ${b.label} | ${figure} | ${verdict(ok)} |`);
      }
    }
  };
  const cpuVsNode = (share, below = null) => (e, n) => {
    const a = e.derived?.us_per_delivery;
    const z = n?.derived?.us_per_delivery;
    const ok = fin(a) && fin(z) ? a <= share * z && (below === null || a < below) : null;
    return [`${micros(a)} vs Node's ${micros(z)} (${ratio(a, z)})`, ok];
  };
  perStep("fanout", (e) => e?.role === "cpu500", (e) => `CPU per delivery ≤ 0.25 × Node's and < 1.5 µs (${stepName(e)})`, cpuVsNode(0.25, 1.5));
  perStep("rooms", () => true, (e) => `CPU per delivery ≤ 0.35 × Node's (${stepName(e)})`, cpuVsNode(0.35));
  const p99VsNode = (e, n) => {
    const a = e.derived?.p99_ms;
    const z = n?.derived?.p99_ms;
    return [`p99 ${fmt(a, 1)} ms vs Node's ${fmt(z, 1)} ms`, fin(a) && fin(z) ? a <= z : null];
  };
  for (const w of ["fanout", "rooms"]) perStep(w, () => true, (e) => `latency p99 ≤ Node's at the same load (${stepName(e)})`, p99VsNode);
  perStep("connections", (e) => e?.step === "loaded", (e) => `latency p99 ≤ Node's at the same load (connections: ${stepName(e)})`, p99VsNode);
  perStep("connections", (e) => e?.step === "idle", () => "connect + join per second ≥ Node's", (e, n) => {
    const a = e.derived?.connect_per_s;
    const z = n?.derived?.connect_per_s;
    return [`${fmt(a, 0)}/s vs Node's ${fmt(z, 0)}/s (${ratio(a, z)}), ${fmt(e.report?.connected, 0)} clients`, fin(a) && fin(z) ? a >= z : null];
  });
  const fileRuns = (id) => results.filter((e) => e.workload === "files" && e.server === id);
  if (results.some((e) => e.workload === "files")) {
    for (const b of builds) {
      const runs = fileRuns(b.id);
      if (!runs.length) continue;
      const mbs = median(runs.map((e) => e.derived?.mb_per_s));
      const growth = median(runs.map((e) => e.derived?.peak_growth_mib));
      const nodeMbs = NODE ? median(fileRuns(NODE.id).map((e) => e.derived?.mb_per_s)) : null;
      const ok = fin(mbs) && fin(nodeMbs) && fin(growth) ? mbs >= 1.2 * nodeMbs && growth < 64 : null;
      rows.push(`| file relay ≥ 1.2 × Node's MB/s, peak RSS growth < 64 MiB | ${b.label} | ${fmt(mbs, 0)} MB/s vs Node's ${fmt(nodeMbs, 0)} (${ratio(mbs, nodeMbs)}), growth ${fmt(growth, 1)} MiB (medians of ${runs.length}) | ${verdict(ok)} |`);
    }
  }
  perStep("fanout", (e) => e?.role === "p99_1000", (e) => `p99 < 50 ms, with loss < 0.1% and ≥ 95% of the planned rate delivered (${stepName(e)})`, (e) => {
    const d = e.derived || {};
    const ok = fin(d.p99_ms) ? d.p99_ms < 50 && d.loss < 0.001 && d.delivered_per_s >= 0.95 * e.planned_deliveries_per_s : null;
    return [`p99 ${fmt(d.p99_ms, 1)} ms, loss ${fmt((d.loss ?? NaN) * 100, 2)}%, ${fmt(d.delivered_per_s, 0)} delivered/s`, ok];
  });
  perStep("connections", (e) => e?.step === "idle", () => "idle RSS ≤ 12 KiB per connection", (e) => {
    const per = e.derived?.rss_per_connection_kib;
    return [`${fmt(per, 2)} KiB at ${fmt(e.report?.connected, 0)} connections`, fin(per) ? per <= 12 : null];
  });
  return rows;
}

function detail() {
  const out = [];
  if (results.some((e) => e.workload === "fanout")) {
    const z = SIZES.fanout;
    const steps = z.steps.map((s) => `${fmt(s.members, 0)} members with ${s.senders} senders at ${s.rate} msg/s`).join("; ");
    out.push(`**Fan-out**: one room, ${steps}; ${z.duration} s window, 256-byte payloads.`, "", ...messageRows("fanout"), "");
  }
  if (results.some((e) => e.workload === "rooms")) {
    const z = SIZES.rooms;
    out.push(`**Many rooms**: ${fmt(z.clients, 0)} clients in ${fmt(z.rooms, 0)} rooms of ${z.clients / z.rooms}, one sender per room, ${z.duration} s window.`, "", ...messageRows("rooms"), "");
  }
  if (results.some((e) => e.workload === "connections")) {
    out.push(`**Connections**: idle, then loaded (rooms of 10, one sender per room, ${fmt(SIZES.connections.deliveries, 0)} deliveries/s planned).`, "");
    out.push("| server | connected | connect s | connects/s | connect p99 ms | server cores connecting | generator cores connecting | RSS at 0 KiB | RSS idle KiB | KiB per connection |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const s of SERVERS) {
      const e = find("connections", s.id, "idle");
      if (!e) continue;
      out.push(`| ${s.label} | ${fmt(e.report?.connected, 0)} | ${fmt(e.report?.connect_s, 1)} | ${fmt(e.derived?.connect_per_s, 0)} | ${fmt(e.report?.connect_ms?.p99, 0)} | ${fmt(e.connect_window?.server_cores, 2)} | ${fmt(e.connect_window?.bench_cores, 2)} | ${fmt(e.rss_before_kib, 0)} | ${fmt(e.derived?.rss_idle_kib, 0)} | ${fmt(e.derived?.rss_per_connection_kib, 2)} |${e.failed ? ` failed: ${e.failed}` : ""}`);
    }
    out.push("", ...messageRows("connections", "loaded"), "");
  }
  if (results.some((e) => e.workload === "files")) {
    const z = SIZES.files;
    out.push(`**Files**: ${z.mib} MiB in 1 MiB chunks, window ${z.window}, ${z.receivers} receivers (bench/file-relay.mjs), fresh server per run.`, "");
    out.push("| server | run | MB/s delivered | s | server CPU s | server cores | relay CPU s | relay cores | RSS before KiB | peak growth MiB |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const e of results.filter((x) => x.workload === "files")) {
      const r = e.report || {};
      const d = e.derived || {};
      out.push(`| ${e.label} | ${e.step + 1} | ${fmt(d.mb_per_s, 0)} | ${fmt(r.seconds, 2)} | ${fmt(r.server?.cpu_s, 2)} | ${fmt(d.server_cores, 2)} | ${fmt(r.cpu_s, 2)} | ${fmt(d.relay_cores, 2)} | ${fmt(r.server?.rss_before_kib, 0)} | ${fmt(d.peak_growth_mib, 1)} |${e.failed ? ` failed: ${e.failed}` : ""}`);
    }
    out.push("");
  }
  return out;
}

/** Build time and hash of a binary (its copy, which is what ran). */
function binaryFacts(built, copy) {
  try {
    const time = fs.statSync(built).mtime.toISOString().slice(0, 16).replace("T", " ");
    const hash = createHash("sha256").update(fs.readFileSync(copy)).digest("hex").slice(0, 12);
    return `built ${time} UTC, sha256 ${hash}…`;
  } catch {
    return "?";
  }
}

function machine() {
  const git = (args) => {
    try {
      return execFileSync("git", ["-C", ROOT, ...args], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    } catch {
      return "?";
    }
  };
  return {
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpu: os.cpus()[0]?.model ?? "?",
    mem_gib: round(os.totalmem() / 2 ** 30, 1),
    kernel: os.release(),
    node: process.version,
    commit: `${git(["rev-parse", "--short", "HEAD"])}${git(["status", "--porcelain", "--", "crates"]) ? " (crates/ modified in the work tree)" : ""}`,
    binaries: SERVERS.filter((s) => s.built).map((s) => `${s.label} (${binaryFacts(s.built, s.bin)})`),
    generator: `${process.env.GEN_BIN ? "GEN_BIN" : BUILDS[0].name ? `StreamChat ${BUILDS[0].name}` : "StreamChat"}'s \`streamchat bench\``,
    fd_limit: FD_LIMIT,
  };
}

function pinning() {
  if (!PIN) return "Not pinned (`--no-pin`): servers and load generators share every CPU; the generator runs 2 threads.";
  const seen = SERVERS.map((s) => {
    const c = PIN_SEEN.get(s.id);
    return `${s.label} ${c?.cpus ?? "?"} (${c?.threads ?? "?"} threads)`;
  }).join(", ");
  const gens = [...new Set(results.map((e) => e.generator_cpus).filter(Boolean))].join(", ") || "?";
  return `Pinned with taskset: every server on CPU ${SERVER_CPU}, every load generator (\`streamchat bench --threads 1\`, \`bench/file-relay.mjs\`) on CPU ${GEN_CPU}; ` +
    `Cpus_allowed_list of every thread, read from /proc: ${seen}; generators ${gens}.`;
}

// ---------------------------------------------------------------- main

const RUNNERS = { fanout, rooms, connections, files };

/** Copies `from` into a directory of its own under BIN_DIR, as `name`; returns the copy. */
function copyBinary(from, name) {
  if (!fs.existsSync(from)) die(`${from} is missing: run scripts/bench (it builds what is missing)`);
  const dir = fs.mkdtempSync(path.join(BIN_DIR, "bin-"));
  const to = path.join(dir, name);
  fs.copyFileSync(from, to);
  fs.chmodSync(to, 0o755);
  return to;
}

async function main() {
  BIN_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "streamchat-bench-bin-"));
  for (const s of SERVERS) {
    if (s.built) s.bin = copyBinary(s.built, s.kind === "streamchat" ? "streamchat" : "socketioxide-baseline");
  }
  const genFrom = process.env.GEN_BIN || BUILDS[0].path;
  GEN = SERVERS.find((s) => s.kind === "streamchat" && s.built === genFrom)?.bin ?? copyBinary(genFrom, "streamchat");
  const m = machine();
  const loadStart = loadavg();
  const began = new Date();
  console.error(`bench: ${SMOKE ? "smoke" : "full"} run, servers ${SERVERS.map((s) => s.label).join(", ")}, workloads ${WORKLOADS.join(", ")}; ` +
    `${m.nproc} cores, load ${loadStart.join(" ")}, open files ${FD_LIMIT}; ` +
    `${PIN ? `servers on CPU ${SERVER_CPU}, generators on CPU ${GEN_CPU}` : "not pinned"}; raw results → ${OUT}`);
  if (MAX_CONNECTIONS < 20_000 && WORKLOADS.includes("connections") && !SMOKE) {
    console.error(`bench: the open-files limit is ${FD_LIMIT}: the connections workload uses ${MAX_CONNECTIONS} instead of 20,000`);
  }
  for (const w of WORKLOADS) {
    for (const s of SERVERS) {
      try {
        await RUNNERS[w](s);
      } catch (e) {
        failures.push(`${w}/${s.id}: ${e.message}`);
        console.error(`bench: ${w}/${s.id} failed: ${e.message}`);
      }
    }
  }
  const minutes = round((Date.now() - began.getTime()) / 60_000, 1);
  const loadEnd = loadavg();

  const section = [];
  section.push(`### Run of ${began.toISOString().slice(0, 16).replace("T", " ")} UTC${SMOKE ? " (smoke)" : ""}`, "");
  section.push(`Command: \`scripts/bench${argv.length ? " " + argv.join(" ") : ""}\` (${minutes} min). ` +
    `Machine: ${m.nproc} cores (${m.cpu}), ${m.mem_gib} GiB, Linux ${m.kernel}, Node ${m.node}; open-files limit ${m.fd_limit}. ` +
    `Code: ${m.commit}; binaries: ${m.binaries.join("; ") || "–"}; load generator: ${m.generator}. ` +
    `${pinning()} ` +
    `Load average (1/5/15 min) ${loadStart.join(" / ")} at the start, ${loadEnd.join(" / ")} at the end; ` +
    `before each run in the raw results (\`${OUT.startsWith(ROOT) ? path.relative(ROOT, OUT) : OUT}\`). The machine is shared with other builds and tests: figures are noisy.`, "");
  section.push("#### Side by side", "",
    "\"gen.\": the load generator's CPU over the same window as the figure on its left (µs per delivery beside CPU per delivery, cores otherwise).", "",
    ...summary(), "");
  section.push(`#### Targets (issue #17)${SMOKE ? ": smoke sizes, not meaningful" : ""}`, "", ...targets(), "");
  section.push("#### Details", "", ...detail());
  if (failures.length) section.push("#### Failed runs", "", ...failures.map((f) => `- ${f}`), "");
  const text = section.join("\n");
  console.log(text);
  if (WRITE_DOCS) {
    if (!fs.existsSync(DOCS)) fs.writeFileSync(DOCS, "# Benchmarks\n\nRun `scripts/bench`; each run appends a section below.\n\n## Runs\n");
    fs.appendFileSync(DOCS, "\n" + text);
    console.error(`bench: appended to ${path.relative(ROOT, DOCS)}`);
  }
  if (failures.length) {
    console.error(`bench: ${failures.length} failed:\n  ${failures.join("\n  ")}`);
    process.exit(1);
  }
  console.error(`bench: ${results.length} runs, all worked (${minutes} min)`);
}

main().catch((e) => {
  console.error(`bench: ${e.stack || e}`);
  process.exit(1);
});
