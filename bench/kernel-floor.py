#!/usr/bin/env python3
"""The kernel's own cost of one delivery on loopback TCP: the floor under any server.

A sender process holds N accepted loopback TCP connections and sends one frame of
PAYLOAD bytes to each of them, BURSTS times per second (a fan-out: every burst is one
message to a room of N). A separate reader process drains the other ends with epoll, as
the load generator does. The sender does nothing else, so its *system* CPU time per
send is what the kernel charges a server for each delivery: tcp_sendmsg plus, on
loopback, the receiving socket's TCP processing and the reader's wake-up. Its user time
is Python's and is reported apart.

    python3 bench/kernel-floor.py [--conns 1000] [--bursts 40] [--seconds 6] [--payload 330] [--pin]

--pin puts the sender on CPU 1 and the reader on CPU 0, as scripts/bench pins a server and
its load generator.

Loopback only (127.0.0.1), bounded in time; it ends the reader it started.
"""

import argparse
import json
import os
import resource
import select
import socket
import sys
import time


def reader(fds, stop_fd):
    ep = select.epoll()
    socks = {}
    for fd in fds:
        s = socket.socket(fileno=fd)
        s.setblocking(False)
        socks[fd] = s
        ep.register(fd, select.EPOLLIN)
    ep.register(stop_fd, select.EPOLLIN)
    got = 0
    while True:
        for fd, _ in ep.poll(1.0):
            if fd == stop_fd:
                os.write(1, json.dumps({"received_bytes": got}).encode() + b"\n")
                os._exit(0)
            try:
                got += len(socks[fd].recv(65536))
            except BlockingIOError:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--bursts", type=float, default=40, help="messages per second to all connections")
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--payload", type=int, default=330, help="bytes per frame (a 256-byte msg event as a websocket frame)")
    ap.add_argument("--pin", action="store_true", help="sender on CPU 1, reader on CPU 0")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * a.conns + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))

    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1024)
    port = lst.getsockname()[1]
    clients, servers = [], []
    for _ in range(a.conns):
        c = socket.create_connection(("127.0.0.1", port))
        s, _ = lst.accept()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        clients.append(c)
        servers.append(s)

    stop_r, stop_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if a.pin:
        os.sched_setaffinity(0, {0} if pid == 0 else {1})
    if pid == 0:
        os.dup2(out_w, 1)
        for s in servers:
            s.close()
        reader([c.fileno() for c in clients], stop_r)
    for c in clients:
        c.close()

    frame = b"\x81\x7e" + len(b"x" * (a.payload - 4)).to_bytes(2, "big") + b"x" * (a.payload - 4)
    frame = frame[: a.payload]
    sends = 0
    t0 = time.monotonic()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    next_burst = t0
    while time.monotonic() - t0 < a.seconds:
        for s in servers:
            s.send(frame)
        sends += len(servers)
        next_burst += 1.0 / a.bursts
        delay = next_burst - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    time.sleep(0.3)
    os.write(stop_w, b"x")
    os.waitpid(pid, 0)
    got = json.loads(os.read(out_r, 4096).decode() or "{}")
    sys_s = r1.ru_stime - r0.ru_stime
    user_s = r1.ru_utime - r0.ru_utime
    print(json.dumps({
        "conns": a.conns, "bursts_per_s": a.bursts, "payload": a.payload, "pinned": a.pin,
        "sends": sends, "sends_per_s": round(sends / wall),
        "kernel_us_per_send": round(sys_s / sends * 1e6, 2),
        "python_user_us_per_send": round(user_s / sends * 1e6, 2),
        "received_bytes": got.get("received_bytes"), "sent_bytes": sends * len(frame),
    }))


if __name__ == "__main__":
    main()
