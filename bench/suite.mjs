#!/usr/bin/env node
// StreamChat's benchmark suite: the same workloads against StreamChat and against a plain
// Node socket.io 4 broadcast server (bench/node-server.mjs), side by side.
// Run it through `scripts/bench`, which builds what is missing and raises the open-files
// limit first; see docs/benchmarks.md for what is measured and how to read it.
//
//   scripts/bench              full suite (6-8 minutes here); appends a dated section
//                              to docs/benchmarks.md and keeps the raw JSON lines in
//                              bench/results/
//   scripts/bench --smoke      every workload for a few seconds at tiny sizes; checks
//                              that each run works; writes nothing to docs/
//
// Options: --servers streamchat,node   --workloads fanout,rooms,connections,files
//          --no-docs (full mode without touching docs/)   --out FILE (raw JSON lines)
//          --samples (keep the 100 ms samples in the raw JSON lines)
//
// Workloads (every server is started by this script, fresh for each workload, on
// 127.0.0.1 with port 0; every run is bounded in time and stops by itself):
//   fanout       one room of 1,000 members, 4 senders at 3 increasing rates
//   rooms        10,000 clients in 1,000 rooms of 10, one sender per room
//   connections  N idle connections (N = 20,000, or less if the open-files limit
//                cannot be raised that far): RSS per connection and connect rate; then
//                N connections in rooms of 10 at 10,000 deliveries/s: latency
//   files        one sender, 5 receivers, a 200 MiB file in 1 MiB chunks, window 8
//
// While each run goes, a sampler reads the server's /proc (CPU, RSS), the load
// generator's /proc (CPU) and the server's /metrics (connections, messages accepted;
// node-server.mjs exports the same names) every 100 ms. The sending window is found
// from those counters (first message accepted → last message accepted), so "server
// CPU per delivery" counts the relaying of messages, not the connect phase and its
// presence flood (reported separately, as the whole-run figure).

import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..");
const TARGET_DIR = process.env.CARGO_TARGET_DIR || path.join(os.homedir(), ".cache/streamchat-target");
const BUILT_BIN = process.env.STREAMCHAT_BIN || path.join(TARGET_DIR, "release/streamchat");
// Other builds may replace the binary while the suite runs: every run uses a copy taken
// at the start (removed at the end), so all figures come from one build.
let BIN = BUILT_BIN;
// The load generator: this binary's own, or GEN_BIN's (to measure two servers under the
// very same generator).
let GEN = process.env.GEN_BIN || BIN;
let BIN_DIR = null;
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
    console.log(fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(1, 30)
      .filter((l) => l.startsWith("//")).map((l) => l.slice(3)).join("\n"));
    process.exit(0);
  }
}
const SMOKE = flag("smoke");
const WRITE_DOCS = !SMOKE && !flag("no-docs");
const KEEP_SAMPLES = flag("samples"); // keep every 100 ms sample in the raw results
const SERVERS = option("servers", "streamchat,node").split(",");
const WORKLOADS = option("workloads", "fanout,rooms,connections,files").split(",");
for (const s of SERVERS) if (!["streamchat", "node"].includes(s)) die(`unknown server ${s}`);
for (const w of WORKLOADS) if (!["fanout", "rooms", "connections", "files"].includes(w)) die(`unknown workload ${w}`);

function die(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

// The open-files limit decides how many connections one process can hold: the load
// generator holds one per client, the server one per connection.
const FD_LIMIT = Number(execFileSync("bash", ["-c", "ulimit -n"]).toString().trim()) || 1024;
const MAX_CONNECTIONS = Math.min(20_000, FD_LIMIT - 500);

// Sizes. Payloads are 256 bytes (a short sealed text message), unsealed: the relay is
// measured, not the clients' crypto.
const SIZES = SMOKE
  ? {
      fanout: { clients: 50, senders: 2, rates: [5, 20], duration: 2, drain: 2 },
      rooms: { clients: 200, rooms: 20, rates: [2], duration: 2, drain: 2 },
      connections: { clients: Math.min(400, MAX_CONNECTIONS), idle: 3, duration: 2, deliveries: 200 },
      files: { mib: 8, receivers: 2, window: 8, repeat: 1 },
    }
  : {
      fanout: { clients: 1000, senders: 4, rates: [2.5, 10, 25], duration: 10, drain: 5 },
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

async function startServer(kind) {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), "streamchat-bench-")); // no stray .env
  const [cmd, args] = kind === "streamchat"
    ? [BIN, ["serve", "--host", "127.0.0.1", "--port", "0", ...STREAMCHAT_LIMITS]]
    : [process.execPath, [path.join(HERE, "node-server.mjs"), "--host", "127.0.0.1", "--port", "0"]];
  const child = track(spawn(cmd, args, { cwd, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] }));
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} did not start in 30 s:\n${log}`)), 30_000);
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
      reject(new Error(`${kind} exited with ${code}:\n${log}`));
    });
  });
  child.stdout.removeAllListeners("data");
  child.stdout.resume();
  child.stderr.resume();
  // node-server.mjs serves its counters from a worker thread too, readable while its
  // main thread is saturated; StreamChat's /metrics runs on its own runtime's threads.
  const metricsUrl = (log.match(/metrics on (http:\/\/[^\s]+)/) || [])[1] || `${url}/metrics`;
  return { kind, child, pid: child.pid, url, metricsUrl, cwd };
}

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
      s.samples.push({
        busy: mc.busy,
        niced: mc.niced,
        idle: mc.idle,
        t: (performance.now() - t0) / 1000,
        scpu: cpu.total,
        sucpu: cpu.user,
        bcpu: s.benchPid ? cpuSeconds(s.benchPid) : null,
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
  return {
    start_s: round(a.t, 2),
    seconds: round(wall, 2),
    server_cpu_s: round(b.scpu - a.scpu, 2),
    // In user space only: the rest is the kernel, mostly its TCP path, which on
    // loopback also does the receiving side's work (see docs/benchmarks.md).
    server_user_cpu_s: round(b.sucpu - a.sucpu, 2),
    server_cores: round((b.scpu - a.scpu) / wall, 2),
    bench_cpu_s: round(benchCpu, 2),
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

async function benchRun(server, workload, step, b) {
  const args = [
    "bench", "--url", server.url, "--server-pid", String(server.pid), "--threads", "2",
    "--clients", String(b.clients), "--rooms", String(b.rooms), "--senders", String(b.senders),
    "--rate", String(b.rate), "--payload", "256", "--duration", String(b.duration),
    "--drain", String(b.drain ?? 3), "--connect-timeout", String(b.connectTimeout ?? 120),
  ];
  const load = loadavg();
  const s = sampler(server);
  await sleep(300);
  const timeoutMs = ((b.connectTimeout ?? 120) + b.duration + (b.drain ?? 3) + 90) * 1000;
  const out = await run(GEN, args, timeoutMs, (pid) => (s.benchPid = pid));
  const benchExit = s.elapsed();
  await sleep(300);
  const samples = await s.stop();
  const report = lastJson(out.stdout);
  const window = findWindow(samples, report, benchExit);
  const entry = {
    workload, server: server.kind, step, load_before: load, args: args.slice(1).join(" "),
    report, window,
    rss_before_kib: samples[0]?.rss ?? null,
  };
  if (KEEP_SAMPLES) entry.samples = samples;
  if (!report) {
    check(entry, false, `no report (exit ${out.code ?? out.signal}): ${out.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    return entry;
  }
  const r = report;
  const delivered = r.delivered || 0;
  entry.derived = {
    connect_per_s: r.connect_s > 0 ? round(r.connected / r.connect_s, 0) : null,
    delivered_per_s: r.delivered_per_s,
    p50_ms: r.latency_ms.p50,
    p99_ms: r.latency_ms.p99,
    loss: r.loss,
    us_per_delivery: window && !window.backlog && delivered > 0 ? round((window.server_cpu_s / delivered) * 1e6, 2) : null,
    user_us_per_delivery: window && !window.backlog && delivered > 0 ? round((window.server_user_cpu_s / delivered) * 1e6, 2) : null,
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

async function fanout(kind) {
  const z = SIZES.fanout;
  const server = await startServer(kind);
  try {
    for (const [i, rate] of z.rates.entries()) {
      await settle(server);
      const entry = await benchRun(server, "fanout", i, {
        clients: z.clients, rooms: 1, senders: z.senders, rate, duration: z.duration, drain: z.drain,
      });
      entry.planned_deliveries_per_s = round(z.senders * rate * (z.clients - 1), 0);
      record(entry);
      progress(entry);
    }
  } finally {
    await stopServer(server);
  }
}

async function rooms(kind) {
  const z = SIZES.rooms;
  const server = await startServer(kind);
  try {
    for (const [i, rate] of z.rates.entries()) {
      await settle(server);
      const perRoom = z.clients / z.rooms;
      const entry = await benchRun(server, "rooms", i, {
        clients: z.clients, rooms: z.rooms, senders: z.rooms, rate: round(rate, 4), duration: z.duration, drain: z.drain,
      });
      entry.planned_deliveries_per_s = round(z.rooms * round(rate, 4) * (perRoom - 1), 0);
      record(entry);
      progress(entry);
    }
  } finally {
    await stopServer(server);
  }
}

async function connections(kind) {
  const z = SIZES.connections;
  const roomsN = Math.floor(z.clients / 10);
  // Idle: every client connected and in a room of 10, nobody sending.
  let server = await startServer(kind);
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
  server = await startServer(kind);
  try {
    await settle(server, 10_000);
    const rate = round(z.deliveries / (roomsN * 9), 4);
    const loaded = await benchRun(server, "connections", "loaded", {
      clients: z.clients, rooms: roomsN, senders: roomsN, rate, duration: z.duration, drain: 5,
    });
    loaded.planned_deliveries_per_s = round(roomsN * rate * 9, 0);
    record(loaded);
    progress(loaded);
  } finally {
    await stopServer(server);
  }
}

async function files(kind) {
  const z = SIZES.files;
  for (let i = 0; i < z.repeat; i++) {
    const server = await startServer(kind); // fresh: its VmHWM is the start-up footprint
    try {
      await settle(server, 10_000);
      const load = loadavg();
      let benchPid = null;
      const out = await run(process.execPath, [
        path.join(HERE, "file-relay.mjs"), "--url", server.url, "--server-pid", String(server.pid),
        "--mib", String(z.mib), "--receivers", String(z.receivers), "--window", String(z.window), "--timeout", "120",
      ], 180_000, (pid) => (benchPid = pid));
      const report = lastJson(out.stdout);
      const entry = { workload: "files", server: kind, step: i, load_before: load, report };
      if (!report) check(entry, false, `no report (exit ${out.code ?? out.signal}): ${out.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      else {
        check(entry, report.complete, `incomplete: ${report.error}`);
        entry.derived = {
          mb_per_s: report.mb_per_s_delivered,
          peak_growth_mib: report.server ? round(report.server.peak_growth_kib / 1024, 1) : null,
          server_cpu_s: report.server?.cpu_s ?? null,
          relay_cpu_s: report.cpu_s,
        };
      }
      void benchPid;
      record(entry);
      progress(entry);
    } finally {
      await stopServer(server);
    }
  }
}

function progress(e) {
  const d = e.derived || {};
  const bits = [`[${new Date().toISOString().slice(11, 19)}] ${e.workload}/${e.step} ${e.server}`, `load ${e.load_before?.join(" ")}`];
  if (e.workload === "files") bits.push(`${d.mb_per_s} MB/s`, `peak growth ${d.peak_growth_mib} MiB`);
  else if (e.step === "idle") bits.push(`${e.report?.connected} conns`, `${d.connect_per_s}/s`, `${d.rss_per_connection_kib} KiB/conn`);
  else bits.push(`${d.delivered_per_s} deliveries/s`, `p50 ${d.p50_ms} p99 ${d.p99_ms} ms`, `${d.us_per_delivery} µs/delivery`,
    `server ${e.window?.server_cores} cores, bench ${e.window?.bench_cores}, others ${e.window?.other_cores} (+${e.window?.niced_cores} niced), idle ${e.window?.idle_cores}`);
  if (e.failed) bits.push(`FAILED: ${e.failed}`);
  console.error(bits.join(" · "));
}

// ---------------------------------------------------------------- report

const LABEL = { streamchat: "StreamChat", node: "Node socket.io" };
const fmt = (x, digits = 1) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : Number(x).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 }));
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${fmt(a / b, 2)}×` : "–");
const find = (workload, server, step) => results.find((e) => e.workload === workload && e.server === server && e.step === step);
const median = (xs) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length ? (v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2) : null;
};

function messageRows(workload, only = null) {
  const rows = [];
  rows.push("| step | server | delivered/s | p50 ms | p99 ms | loss | server CPU µs/delivery (window) | (whole run) | server cores | generator cores | other cores (niced) | idle cores | sent/planned | notes |");
  rows.push("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
  const steps = [...new Set(results.filter((e) => e.workload === workload).map((e) => e.step))].filter((s) => only === null || s === only);
  for (const step of steps) {
    for (const server of SERVERS) {
      const e = find(workload, server, step);
      if (!e) continue;
      const r = e.report || {};
      const d = e.derived || {};
      const notes = [];
      if (e.failed) notes.push(`failed: ${e.failed}`);
      if (d.generator_short) notes.push("generator missed ticks");
      if (r.skipped) notes.push(`${fmt(r.skipped, 0)} ticks skipped (64 unacked)`);
      if (r.disconnected) notes.push(`${r.disconnected} cut off`);
      if (e.window?.overlaps_teardown) notes.push("window overlaps teardown");
      if (e.window?.backlog) notes.push("server still behind when the generator stopped: CPU/delivery not comparable");
      const refused = Object.entries(r.refused || {}).map(([p, c]) => `${p}: ${Object.entries(c).map(([k, v]) => `${k} ${v}`).join(", ")}`);
      if (refused.length) notes.push(`refused ${refused.join("; ")}`);
      const w = e.window || {};
      if (Number.isFinite(w.server_cores) && Number.isFinite(w.bench_cores) && w.server_cores + w.bench_cores >= 1.8) notes.push("machine saturated (2 cores)");
      rows.push(`| ${fmt(e.planned_deliveries_per_s, 0)}/s planned | ${LABEL[server]} | ${fmt(d.delivered_per_s, 0)} | ${fmt(d.p50_ms, 1)} | ${fmt(d.p99_ms, 1)} | ${fmt((d.loss ?? NaN) * 100, 2)}% | ${fmt(d.us_per_delivery, 2)} | ${fmt(d.us_per_delivery_whole_run, 2)} | ${fmt(w.server_cores, 2)} | ${fmt(w.bench_cores, 2)} | ${fmt(w.other_cores, 2)} (${fmt(w.niced_cores, 2)}) | ${fmt(w.idle_cores, 2)} | ${fmt(r.sent, 0)}/${fmt(r.planned, 0)} | ${notes.join("; ")} |`);
    }
  }
  return rows;
}

function summary() {
  const rows = ["| workload | metric | StreamChat | Node socket.io | StreamChat / Node |", "|---|---|---:|---:|---:|"];
  const add = (workload, metric, a, b, digits = 1) => rows.push(`| ${workload} | ${metric} | ${fmt(a, digits)} | ${fmt(b, digits)} | ${ratio(a, b)} |`);
  const get = (w, s, step, f) => {
    const e = find(w, s, step);
    return e ? f(e) : null;
  };
  for (const w of ["fanout", "rooms"]) {
    const steps = [...new Set(results.filter((e) => e.workload === w).map((e) => e.step))];
    for (const step of steps) {
      const planned = get(w, SERVERS[0], step, (e) => e.planned_deliveries_per_s);
      const name = `${w === "fanout" ? `fan-out 1 room × ${fmt(SIZES.fanout.clients, 0)}` : `${fmt(SIZES.rooms.clients, 0)} clients in rooms of ${SIZES.rooms.clients / SIZES.rooms.rooms}`} @ ${fmt(planned, 0)}/s`;
      add(name, "delivered/s (higher is better)", get(w, "streamchat", step, (e) => e.derived?.delivered_per_s), get(w, "node", step, (e) => e.derived?.delivered_per_s), 0);
      add(name, "p99 latency ms", get(w, "streamchat", step, (e) => e.derived?.p99_ms), get(w, "node", step, (e) => e.derived?.p99_ms));
      add(name, "server CPU µs per delivery", get(w, "streamchat", step, (e) => e.derived?.us_per_delivery), get(w, "node", step, (e) => e.derived?.us_per_delivery), 2);
      add(name, "of which in user space", get(w, "streamchat", step, (e) => e.derived?.user_us_per_delivery), get(w, "node", step, (e) => e.derived?.user_us_per_delivery), 2);
    }
  }
  const idle = (s, f) => get("connections", s, "idle", f);
  const loaded = (s, f) => get("connections", s, "loaded", f);
  if (results.some((e) => e.workload === "connections")) {
    const n = idle("streamchat", (e) => e.report?.clients) ?? idle("node", (e) => e.report?.clients);
    add(`connections ${fmt(n, 0)} idle`, "RSS per idle connection KiB", idle("streamchat", (e) => e.derived?.rss_per_connection_kib), idle("node", (e) => e.derived?.rss_per_connection_kib), 2);
    add(`connections ${fmt(n, 0)} idle`, "connect + join per second (higher is better)", idle("streamchat", (e) => e.derived?.connect_per_s), idle("node", (e) => e.derived?.connect_per_s), 0);
    add(`connections ${fmt(n, 0)} loaded`, "delivered/s", loaded("streamchat", (e) => e.derived?.delivered_per_s), loaded("node", (e) => e.derived?.delivered_per_s), 0);
    add(`connections ${fmt(n, 0)} loaded`, "p99 latency ms", loaded("streamchat", (e) => e.derived?.p99_ms), loaded("node", (e) => e.derived?.p99_ms));
    add(`connections ${fmt(n, 0)} loaded`, "server CPU µs per delivery", loaded("streamchat", (e) => e.derived?.us_per_delivery), loaded("node", (e) => e.derived?.us_per_delivery), 2);
    add(`connections ${fmt(n, 0)} loaded`, "of which in user space", loaded("streamchat", (e) => e.derived?.user_us_per_delivery), loaded("node", (e) => e.derived?.user_us_per_delivery), 2);
  }
  if (results.some((e) => e.workload === "files")) {
    const f = (s, key) => median(results.filter((e) => e.workload === "files" && e.server === s).map((e) => e.derived?.[key]));
    add(`files ${SIZES.files.mib} MiB → ${SIZES.files.receivers}`, "MB/s delivered, median (higher is better)", f("streamchat", "mb_per_s"), f("node", "mb_per_s"), 0);
    add(`files ${SIZES.files.mib} MiB → ${SIZES.files.receivers}`, "server peak RSS growth MiB, median", f("streamchat", "peak_growth_mib"), f("node", "peak_growth_mib"), 1);
  }
  return rows;
}

function targets() {
  const rows = ["| target | figure | verdict |", "|---|---|---|"];
  const verdict = (ok) => (ok === null ? "not measured" : ok ? "**met**" : "**not met**");
  for (const w of ["fanout", "rooms"]) {
    for (const step of [...new Set(results.filter((e) => e.workload === w).map((e) => e.step))]) {
      const sc = find(w, "streamchat", step)?.derived?.us_per_delivery;
      const nd = find(w, "node", step)?.derived?.us_per_delivery;
      const planned = find(w, "streamchat", step)?.planned_deliveries_per_s;
      const ok = Number.isFinite(sc) ? sc < 2 && (!Number.isFinite(nd) || sc <= nd / 4) : null;
      rows.push(`| CPU per delivery < 2 µs and ≤ ¼ of Node's (${w === "fanout" ? "fan-out" : "rooms of 10"} @ ${fmt(planned, 0)}/s) | ${fmt(sc, 2)} µs vs ${fmt(nd, 2)} µs (${ratio(sc, nd)}) | ${verdict(Number.isFinite(nd) ? ok : null)} |`);
    }
  }
  const idle = find("connections", "streamchat", "idle");
  if (idle) {
    const per = idle.derived?.rss_per_connection_kib;
    rows.push(`| RSS per idle connection ≤ 12 KiB | ${fmt(per, 2)} KiB at ${fmt(idle.report?.connected, 0)} connections | ${verdict(Number.isFinite(per) ? per <= 12 : null)} |`);
  }
  const loaded = find("connections", "streamchat", "loaded");
  if (loaded) {
    const d = loaded.derived || {};
    const n = loaded.report?.connected;
    const ok = Number.isFinite(d.p99_ms) ? d.p99_ms < 50 && d.delivered_per_s >= 0.95 * SIZES.connections.deliveries && d.loss < 0.001 : null;
    rows.push(`| 20,000 connections, p99 < 50 ms at 10,000 deliveries/s | p99 ${fmt(d.p99_ms, 1)} ms at ${fmt(d.delivered_per_s, 0)} deliveries/s, ${fmt(n, 0)} connections${n < 20_000 ? " (fewer than 20,000: open-files limit)" : ""} | ${verdict(ok)}${ok && n < 20_000 ? " at " + fmt(n, 0) : ""} |`);
  }
  const fileRuns = results.filter((e) => e.workload === "files" && e.server === "streamchat");
  if (fileRuns.length) {
    const mbs = median(fileRuns.map((e) => e.derived?.mb_per_s));
    const growth = median(fileRuns.map((e) => e.derived?.peak_growth_mib));
    rows.push(`| file relay ≥ 200 MB/s | ${fmt(mbs, 0)} MB/s delivered (median of ${fileRuns.length}) | ${verdict(Number.isFinite(mbs) ? mbs >= 200 : null)} |`);
    rows.push(`| file relay peak RSS growth < 64 MiB | ${fmt(growth, 1)} MiB (median of ${fileRuns.length}) | ${verdict(Number.isFinite(growth) ? growth < 64 : null)} |`);
  }
  return rows;
}

function detail() {
  const out = [];
  if (results.some((e) => e.workload === "fanout")) {
    const z = SIZES.fanout;
    out.push(`**Fan-out**: one room of ${fmt(z.clients, 0)} members, ${z.senders} senders at ${z.rates.join(", ")} msg/s each, ${z.duration} s window, 256-byte payloads.`, "", ...messageRows("fanout"), "");
  }
  if (results.some((e) => e.workload === "rooms")) {
    const z = SIZES.rooms;
    out.push(`**Many rooms**: ${fmt(z.clients, 0)} clients in ${fmt(z.rooms, 0)} rooms of ${z.clients / z.rooms}, one sender per room, ${z.duration} s window.`, "", ...messageRows("rooms"), "");
  }
  if (results.some((e) => e.workload === "connections")) {
    out.push(`**Connections**: idle, then loaded (rooms of 10, one sender per room, ${fmt(SIZES.connections.deliveries, 0)} deliveries/s planned).`, "");
    out.push("| server | connected | connect s | connects/s | connect p99 ms | RSS at 0 KiB | RSS idle KiB | KiB per connection |", "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const s of SERVERS) {
      const e = find("connections", s, "idle");
      if (!e) continue;
      out.push(`| ${LABEL[s]} | ${fmt(e.report?.connected, 0)} | ${fmt(e.report?.connect_s, 1)} | ${fmt(e.derived?.connect_per_s, 0)} | ${fmt(e.report?.connect_ms?.p99, 0)} | ${fmt(e.rss_before_kib, 0)} | ${fmt(e.derived?.rss_idle_kib, 0)} | ${fmt(e.derived?.rss_per_connection_kib, 2)} |`);
    }
    out.push("", ...messageRows("connections", "loaded"), "");
  }
  if (results.some((e) => e.workload === "files")) {
    const z = SIZES.files;
    out.push(`**Files**: ${z.mib} MiB in 1 MiB chunks, window ${z.window}, ${z.receivers} receivers (bench/file-relay.mjs), fresh server per run.`, "");
    out.push("| server | run | MB/s delivered | s | server CPU s | relay CPU s | RSS before KiB | peak growth MiB |", "|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const e of results.filter((x) => x.workload === "files")) {
      const r = e.report || {};
      out.push(`| ${LABEL[e.server]} | ${e.step + 1} | ${fmt(e.derived?.mb_per_s, 0)} | ${fmt(r.seconds, 2)} | ${fmt(r.server?.cpu_s, 2)} | ${fmt(r.cpu_s, 2)} | ${fmt(r.server?.rss_before_kib, 0)} | ${fmt(e.derived?.peak_growth_mib, 1)} |${e.failed ? ` failed: ${e.failed}` : ""}`);
    }
    out.push("");
  }
  return out;
}

function machine() {
  const git = (args) => {
    try {
      return execFileSync("git", ["-C", ROOT, ...args], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
    } catch {
      return "?";
    }
  };
  const cpu = os.cpus()[0]?.model ?? "?";
  let binTime = "?";
  let binHash = "?";
  try {
    binTime = fs.statSync(BUILT_BIN).mtime.toISOString().slice(0, 16).replace("T", " ");
    binHash = createHash("sha256").update(fs.readFileSync(BIN)).digest("hex").slice(0, 12);
  } catch {}
  return {
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpu,
    mem_gib: round(os.totalmem() / 2 ** 30, 1),
    kernel: os.release(),
    node: process.version,
    commit: `${git(["rev-parse", "--short", "HEAD"])}${git(["status", "--porcelain", "--", "crates"]) ? " (crates/ modified in the work tree)" : ""}`,
    binary_built: binTime,
    binary_sha256: binHash,
    fd_limit: FD_LIMIT,
  };
}

// ---------------------------------------------------------------- main

const RUNNERS = { fanout, rooms, connections, files };

async function main() {
  if (!fs.existsSync(BUILT_BIN)) die(`${BUILT_BIN} is missing: run scripts/bench (it builds it)`);
  BIN_DIR = fs.mkdtempSync(path.join(os.tmpdir(), "streamchat-bench-bin-"));
  BIN = path.join(BIN_DIR, "streamchat");
  fs.copyFileSync(BUILT_BIN, BIN);
  fs.chmodSync(BIN, 0o755);
  if (!process.env.GEN_BIN) GEN = BIN;
  const m = machine();
  const loadStart = loadavg();
  const began = new Date();
  console.error(`bench: ${SMOKE ? "smoke" : "full"} run, servers ${SERVERS.join(", ")}, workloads ${WORKLOADS.join(", ")}; ` +
    `${m.nproc} cores, load ${loadStart.join(" ")}, open files ${FD_LIMIT}; raw results → ${OUT}`);
  if (MAX_CONNECTIONS < 20_000 && WORKLOADS.includes("connections") && !SMOKE) {
    console.error(`bench: the open-files limit is ${FD_LIMIT}: the connections workload uses ${MAX_CONNECTIONS} instead of 20,000`);
  }
  for (const w of WORKLOADS) {
    for (const s of SERVERS) {
      try {
        await RUNNERS[w](s);
      } catch (e) {
        failures.push(`${w}/${s}: ${e.message}`);
        console.error(`bench: ${w}/${s} failed: ${e.message}`);
      }
    }
  }
  const minutes = round((Date.now() - began.getTime()) / 60_000, 1);
  const loadEnd = loadavg();

  const section = [];
  section.push(`### Run of ${began.toISOString().slice(0, 16).replace("T", " ")} UTC${SMOKE ? " (smoke)" : ""}`, "");
  section.push(`Command: \`scripts/bench${argv.length ? " " + argv.join(" ") : ""}\` (${minutes} min). ` +
    `Machine: ${m.nproc} cores (${m.cpu}), ${m.mem_gib} GiB, Linux ${m.kernel}, Node ${m.node}; open-files limit ${m.fd_limit}. ` +
    `Code: ${m.commit}, release binary built ${m.binary_built} UTC (sha256 ${m.binary_sha256}…). ` +
    `Load average (1/5/15 min) ${loadStart.join(" / ")} at the start, ${loadEnd.join(" / ")} at the end; ` +
    `before each run in the raw results (\`${OUT.startsWith(ROOT) ? path.relative(ROOT, OUT) : OUT}\`). The machine is shared with other builds and tests: figures are noisy.`, "");
  section.push("#### Side by side", "", ...summary(), "");
  section.push(`#### Targets (issue #7)${SMOKE ? ": smoke sizes, not meaningful" : ""}`, "", ...targets(), "");
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
