#!/usr/bin/env node
// The baseline of the benchmark suite: a plain Node socket.io 4 broadcast server that
// speaks StreamChat's wire events (docs/protocol.md) as far as the benchmarks need them,
// and nothing more: no limits, no rate buckets, no slow-receiver cut-off, no auth, no
// validation beyond "is this a string / am I in this room". It is what a user could run
// instead of StreamChat, written the way socket.io's documentation suggests.
//
//   node bench/node-server.mjs [--host 127.0.0.1] [--port 0]
//
// Prints `listening on http://HOST:PORT` once it accepts connections, like
// `streamchat serve`. Stops on SIGTERM / SIGINT. GET /health answers {"status":"ok"};
// GET /metrics gives three counters in StreamChat's metric names (for the suite), also
// served by a worker thread on the port printed as `metrics on http://HOST:PORT/metrics`.
//
// Events (every one acks when the client asks for an ack; errors become a `notice`
// otherwise):
//   join  {room, profile}   -> ack {ok, member, at, members:[{member, at, profile}], limits}
//                              presence {room, kind:"join", member, at, profile} to the others
//   leave {room}            -> ack {ok}; presence {kind:"leave", reason:"left"} to the others
//   msg   {room, data, to?} -> msg {room, from, ts, data[, to]} to the others (or to `to`);
//                              ack {ok, ts}
//   chunk {room, file, seq, data} -> chunk {room, from, file, seq, data} to the others; ack {ok}
//   (disconnect)            -> presence {kind:"leave", reason:"disconnected"} to the others

import { createServer } from "node:http";
import { Worker } from "node:worker_threads";
import { Server } from "socket.io";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg("host", "127.0.0.1");
const port = Number(arg("port", "0"));
const MiB = 1024 * 1024;

// Reported in the join ack only because clients expect the field (the Rust client's
// JoinAck requires it). This server enforces none of them except the transport's
// largest packet, which must let a 1 MiB chunk plus its header through.
const MAX_CHUNK_BYTES = MiB;
const LIMITS = {
  max_message_bytes: MAX_CHUNK_BYTES,
  max_chunk_bytes: MAX_CHUNK_BYTES,
  max_file_chunks: 4294967295,
  max_file_bytes: 4294967295 * MAX_CHUNK_BYTES,
  max_members_per_room: 1_000_000_000,
};

// Counters for the benchmark suite, in the same names as StreamChat's /metrics, so the
// suite finds the sending window (first `msg` accepted, last one, first connection gone)
// the same way on both servers. Plain increments in shared memory; a worker thread serves
// them on a port of its own (`metrics on http://…`), so they stay readable while the
// main thread is saturated. Nothing to measure in the relay's cost.
const counters = new Float64Array(new SharedArrayBuffer(3 * 8)); // connections, msgs, chunks
const CONNS = 0;
const MSGS = 1;
const CHUNKS = 2;
const metricsText = (c) =>
  `streamchat_connections ${c[0]}\nstreamchat_messages_relayed_total ${c[1]}\nstreamchat_chunks_relayed_total ${c[2]}\n`;
const metricsWorker = new Worker(
  `
  const { workerData, parentPort } = require("node:worker_threads");
  const c = new Float64Array(workerData.buffer);
  const server = require("node:http").createServer((req, res) => {
    res.writeHead(req.url === "/metrics" ? 200 : 404, { "content-type": "text/plain; version=0.0.4" });
    res.end(req.url === "/metrics" ? (${metricsText.toString()})(c) : "");
  });
  server.listen(0, workerData.host, () => parentPort.postMessage(server.address().port));
  `,
  { eval: true, workerData: { buffer: counters.buffer, host } },
);
const metricsPort = await new Promise((resolve, reject) => {
  metricsWorker.once("message", resolve);
  metricsWorker.once("error", reject);
});
metricsWorker.unref();

const http = createServer((req, res) => {
  if (req.url === "/metrics") {
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(metricsText(counters));
    return;
  }
  if (req.url === "/health") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(http, {
  serveClient: false,
  maxHttpBufferSize: MAX_CHUNK_BYTES + 64 * 1024,
  pingInterval: 25_000,
  pingTimeout: 20_000,
  perMessageDeflate: false,
  cors: { origin: false },
});

/** room -> Map(member id -> {member, at, profile}) */
const rooms = new Map();

function error(code, message) {
  return { ok: false, error: { code, message } };
}

function reply(socket, ack, value) {
  if (typeof ack === "function") ack(value);
  else if (value && value.ok === false) socket.emit("notice", value.error);
}

function isString(x) {
  return typeof x === "string" && x.length > 0;
}

function leaveRoom(socket, room, reason) {
  const members = rooms.get(room);
  if (!members || !members.delete(socket.id)) return false;
  if (members.size === 0) rooms.delete(room);
  socket.leave(room);
  socket
    .to(room)
    .emit("presence", { room, kind: "leave", member: socket.id, at: Date.now(), reason });
  return true;
}

io.on("connection", (socket) => {
  /** rooms this socket is in */
  const mine = new Set();
  counters[CONNS]++;

  socket.on("join", (req, ack) => {
    if (!req || !isString(req.room) || typeof req.profile !== "string") {
      return reply(socket, ack, error("bad_request", "join needs {room, profile}"));
    }
    const { room, profile } = req;
    let members = rooms.get(room);
    if (!members) {
      members = new Map();
      rooms.set(room, members);
    }
    const others = [];
    for (const [id, info] of members) if (id !== socket.id) others.push(info);
    const existing = members.get(socket.id);
    if (existing) {
      return reply(socket, ack, {
        ok: true, member: socket.id, at: existing.at, members: others, limits: LIMITS,
      });
    }
    const at = Date.now();
    members.set(socket.id, { member: socket.id, at, profile });
    mine.add(room);
    socket.join(room);
    // The ack goes out before any event of the room reaches the joiner (one thread).
    reply(socket, ack, { ok: true, member: socket.id, at, members: others, limits: LIMITS });
    socket.to(room).emit("presence", { room, kind: "join", member: socket.id, at, profile });
  });

  socket.on("leave", (req, ack) => {
    if (!req || !isString(req.room)) return reply(socket, ack, error("bad_request", "leave needs {room}"));
    if (!leaveRoom(socket, req.room, "left")) {
      return reply(socket, ack, error("not_member", "not in this room"));
    }
    mine.delete(req.room);
    reply(socket, ack, { ok: true });
  });

  socket.on("msg", (req, ack) => {
    if (!req || !isString(req.room) || !Buffer.isBuffer(req.data)) {
      return reply(socket, ack, error("bad_request", "msg needs {room, data}"));
    }
    const { room, data, to } = req;
    const members = rooms.get(room);
    if (!members || !members.has(socket.id)) return reply(socket, ack, error("not_member", "not in this room"));
    const ts = Date.now();
    if (to !== undefined) {
      if (!isString(to) || !members.has(to)) return reply(socket, ack, error("not_member", "no such member"));
      io.to(to).emit("msg", { room, from: socket.id, ts, data, to });
    } else {
      socket.to(room).emit("msg", { room, from: socket.id, ts, data });
    }
    counters[MSGS]++;
    reply(socket, ack, { ok: true, ts });
  });

  socket.on("chunk", (req, ack) => {
    if (!req || !isString(req.room) || !isString(req.file) || !Number.isInteger(req.seq) || !Buffer.isBuffer(req.data)) {
      return reply(socket, ack, error("bad_request", "chunk needs {room, file, seq, data}"));
    }
    const { room, file, seq, data } = req;
    const members = rooms.get(room);
    if (!members || !members.has(socket.id)) return reply(socket, ack, error("not_member", "not in this room"));
    socket.to(room).emit("chunk", { room, from: socket.id, file, seq, data });
    counters[CHUNKS]++;
    reply(socket, ack, { ok: true });
  });

  socket.on("disconnect", () => {
    counters[CONNS]--;
    for (const room of mine) leaveRoom(socket, room, "disconnected");
    mine.clear();
  });
});

http.listen(port, host, () => {
  const { address, port: bound } = http.address();
  console.log(`metrics on http://${host}:${metricsPort}/metrics`);
  console.log(`listening on http://${address}:${bound}`);
});

function stop() {
  io.close();
  http.close();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
