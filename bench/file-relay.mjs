#!/usr/bin/env node
// File relay benchmark (`streamchat bench` has no file mode): one sender sends a file as
// `chunk` events to R receivers in one room, paced by acks with a window of W chunks in
// flight, as the web and terminal clients do. Works against StreamChat and against
// bench/node-server.mjs alike (same events).
//
//   node bench/file-relay.mjs --url http://127.0.0.1:8000 --server-pid PID \
//     [--mib 200] [--chunk-bytes 1048576] [--window 8] [--receivers 5] [--timeout 120]
//
// Prints one JSON line: bytes delivered, MB/s (10^6 bytes/s) aggregate over receivers
// and per receiver, the server's CPU seconds, its resident memory before the transfer
// and its peak growth (VmRSS sampled every 10 ms, and VmHWM at the end), and this
// process's own CPU seconds (the generator shares the machine with the server).
// Loopback only. Stops by itself: at --timeout the run ends with `complete: false`.

import { readFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { io } from "socket.io-client";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const url = arg("url", "http://127.0.0.1:8000");
const serverPid = arg("server-pid", null);
const mib = Number(arg("mib", "200"));
const chunkBytes = Number(arg("chunk-bytes", String(1024 * 1024)));
const window = Number(arg("window", "8"));
const receiverCount = Number(arg("receivers", "5"));
const timeoutS = Number(arg("timeout", "120"));

const host = new URL(url).hostname;
if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== "localhost" && host !== "[::1]") {
  console.error(`${host} is not a loopback address`);
  process.exit(2);
}
if (!(mib > 0 && mib <= 4096) || !(chunkBytes > 0 && chunkBytes <= 16 * 1024 * 1024) ||
    !(window >= 1 && window <= 1024) || !(receiverCount >= 1 && receiverCount <= 100) ||
    !(timeoutS > 0 && timeoutS <= 600)) {
  console.error("out of bounds: --mib 1..4096, --chunk-bytes 1..16Mi, --window 1..1024, --receivers 1..100, --timeout 1..600");
  process.exit(2);
}

const totalBytes = mib * 1024 * 1024;
const chunks = Math.ceil(totalBytes / chunkBytes);
const room = randomBytes(16).toString("base64url"); // 22 chars, as clients derive it
const file = randomBytes(12).toString("base64url"); // 16 chars
const profile = "YmVuY2g"; // the server never reads profiles
const deadline = Date.now() + timeoutS * 1000;

function status() {
  if (!serverPid) return null;
  try {
    const text = readFileSync(`/proc/${serverPid}/status`, "utf8");
    const kib = (name) => Number((text.match(new RegExp(`^${name}:\\s+(\\d+)`, "m")) || [])[1]);
    return { rss: kib("VmRSS"), hwm: kib("VmHWM") };
  } catch {
    return null;
  }
}

function serverCpu() {
  if (!serverPid) return null;
  try {
    const stat = readFileSync(`/proc/${serverPid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, USER_HZ = 100
  } catch {
    return null;
  }
}

function connect() {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ["websocket"], reconnection: false, timeout: 10_000 });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (e) => reject(e));
  });
}

function join(socket) {
  return new Promise((resolve, reject) => {
    socket.timeout(10_000).emit("join", { room, profile }, (err, ack) => {
      if (err) reject(err);
      else if (!ack || !ack.ok) reject(new Error(`join refused: ${JSON.stringify(ack)}`));
      else resolve(ack);
    });
  });
}

const result = {
  url, mib, chunk_bytes: chunkBytes, chunks, window, receivers: receiverCount,
  complete: false, error: null,
};
const sockets = [];

async function run() {
  const receivers = [];
  for (let i = 0; i < receiverCount; i++) {
    const socket = await connect();
    sockets.push(socket);
    await join(socket);
    const r = { bytes: 0, chunks: 0, doneAt: null };
    socket.on("chunk", (c) => {
      if (c.file !== file) return;
      r.bytes += c.data.length;
      r.chunks += 1;
      if (r.chunks === chunks) r.doneAt = performance.now();
    });
    receivers.push(r);
  }
  const sender = await connect();
  sockets.push(sender);
  await join(sender);
  await new Promise((r) => setTimeout(r, 300)); // let presence settle

  const data = randomBytes(chunkBytes); // the same bytes every chunk: the relay never looks
  const last = totalBytes - (chunks - 1) * chunkBytes;
  const before = status();
  let peakRss = before ? before.rss : 0;
  const sampler = setInterval(() => {
    const s = status();
    if (s) peakRss = Math.max(peakRss, s.rss);
  }, 10);
  const cpu0 = serverCpu();
  const own0 = process.cpuUsage();
  const t0 = performance.now();

  let next = 0;
  let acked = 0;
  let refused = 0;
  await new Promise((resolve) => {
    let inFlight = 0;
    const pump = () => {
      while (inFlight < window && next < chunks) {
        const seq = next++;
        inFlight++;
        const body = seq === chunks - 1 ? data.subarray(0, last) : data;
        sender.timeout(30_000).emit("chunk", { room, file, seq, data: body }, (err, ack) => {
          inFlight--;
          if (err || !ack || !ack.ok) {
            refused++;
            if (!result.error) result.error = err ? String(err.message || err) : JSON.stringify(ack);
          } else {
            acked++;
          }
          if (next >= chunks && inFlight === 0) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const sentAt = performance.now();
  // Wait for every receiver to hold every chunk (or the deadline).
  while (receivers.some((r) => r.chunks < chunks) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const t1 = performance.now();
  clearInterval(sampler);
  const after = status();
  if (after) peakRss = Math.max(peakRss, after.rss);
  const cpu1 = serverCpu();
  const own = process.cpuUsage(own0);

  const delivered = receivers.reduce((a, r) => a + r.bytes, 0);
  const seconds = (t1 - t0) / 1000;
  result.complete = receivers.every((r) => r.chunks === chunks) && refused === 0;
  Object.assign(result, {
    acked,
    refused,
    bytes_sent: totalBytes,
    bytes_delivered: delivered,
    seconds: round(seconds),
    send_s: round((sentAt - t0) / 1000),
    mb_per_s_delivered: round(delivered / seconds / 1e6),
    mb_per_s_per_receiver: round(delivered / receiverCount / seconds / 1e6),
    cpu_s: round((own.user + own.system) / 1e6),
    server: serverPid
      ? {
          pid: Number(serverPid),
          cpu_s: cpu0 !== null && cpu1 !== null ? round(cpu1 - cpu0) : null,
          rss_before_kib: before ? before.rss : null,
          rss_peak_sampled_kib: peakRss,
          rss_hwm_kib: after ? after.hwm : null,
          rss_end_kib: after ? after.rss : null,
          // Growth over the transfer: the sampled peak (10 ms), or the kernel's high-water
          // mark if higher (the server is started fresh for this run, so its HWM before
          // the transfer is its start-up footprint).
          peak_growth_kib: before && after ? Math.max(peakRss, after.hwm) - before.rss : null,
        }
      : null,
  });
}

function round(x) {
  return Math.round(x * 1000) / 1000;
}

const hard = setTimeout(() => {
  result.error = result.error || "timeout";
  finish(1);
}, (timeoutS + 30) * 1000);

function finish(code) {
  clearTimeout(hard);
  for (const s of sockets) s.close();
  console.log(JSON.stringify(result));
  setTimeout(() => process.exit(code), 200).unref();
}

run().then(
  () => finish(result.complete ? 0 : 1),
  (e) => {
    result.error = String(e && e.message ? e.message : e);
    finish(1);
  },
);
