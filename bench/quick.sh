#!/usr/bin/env bash
# Quick single-figure probes of StreamChat alone (no Node baseline, no docs), used to
# measure what each optimization bought (docs/benchmarks.md, "What each change bought").
# The full side-by-side suite is scripts/bench.
#
#   bench/quick.sh memory [N]          RSS per idle connection: N clients (default 5000)
#                                      connected and in rooms of 10, nobody sending
#   bench/quick.sh fanout [RATE]       server CPU µs per delivery in one room of 1,000,
#                                      4 senders at RATE msg/s each (default 10 = 40,000
#                                      deliveries/s), over a 6 s window; split into user
#                                      space and kernel
#   bench/quick.sh rooms [RATE]        server CPU µs per delivery in 1,000 rooms of 10 (10,000
#                                      clients), one sender per room at RATE msg/s (default
#                                      1.111 = 10,000 deliveries/s), over a 8 s window
#   bench/quick.sh memory 5000 BIN     any probe: an explicit binary as last argument
#   GEN_BIN=OTHER bench/quick.sh ...   the load generator from another binary (to compare
#                                      two servers under the very same generator)
#   PIN=1 bench/quick.sh ...           pinned as scripts/bench pins: the server on CPU 1,
#                                      the generator on CPU 0 with one runtime thread
#                                      (the figures of docs/benchmarks.md's "What each
#                                      change bought" were taken unpinned)
#
# Loopback only, ports from the kernel, bounded in time; ends only the server it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/streamchat-target}"

what="${1:-memory}"
arg="${2:-}"
BIN="${3:-$CARGO_TARGET_DIR/release/streamchat}"
[ -x "$BIN" ] || cargo build --release -p streamchat
GEN="${GEN_BIN:-$BIN}"
on_server=()
on_generator=()
threads=2
if [ "${PIN:-0}" = 1 ]; then
  on_server=(taskset -c 1)
  on_generator=(taskset -c 0)
  threads=1
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
"${on_server[@]}" "$BIN" serve --port "$port" --max-connections-per-ip 100000 --max-members-per-room 100000 \
  --messages-per-second 100000 --message-burst 100000 --bytes-per-second 1000000000 \
  --byte-burst 1000000000 --send-buffer-packets 4096 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 50); do grep -q listening "$log" && break; sleep 0.1; done

rss() { awk '/VmRSS/ { print $2 }' "/proc/$server/status"; }
# utime and stime of the server, in clock ticks (USER_HZ = 100)
cpu() { awk '{ print $14, $15 }' "/proc/$server/stat"; }

# report PROBE DELIVERIES_PER_S WINDOW_S u0 s0 u1 s1 GENERATOR_OUT: one JSON line of the
# server's CPU per planned delivery in the window, split into user space and kernel.
report() {
  python3 - "$@" <<'PY'
import json, sys
probe, rate, window = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
u0, s0, u1, s1 = map(int, sys.argv[4:8])
report = json.loads(open(sys.argv[8]).read().strip().splitlines()[-1])
deliveries = rate * window  # planned deliveries in the window
print(json.dumps({
    "probe": probe, "deliveries_per_s_planned": round(rate),
    "delivered_per_s": report["delivered_per_s"], "loss": report["loss"],
    "p50_ms": report["latency_ms"]["p50"], "p99_ms": report["latency_ms"]["p99"],
    "us_per_delivery": round((u1 - u0 + s1 - s0) / 100 / deliveries * 1e6, 2),
    "user_us_per_delivery": round((u1 - u0) / 100 / deliveries * 1e6, 2),
    "kernel_us_per_delivery": round((s1 - s0) / 100 / deliveries * 1e6, 2),
}))
PY
}

case "$what" in
  memory)
    n="${arg:-5000}"
    sleep 0.5
    before=$(rss)
    "${on_generator[@]}" "$GEN" bench --url "http://127.0.0.1:$port" --clients "$n" --rooms $((n / 10)) --senders 0 \
      --rate 1 --duration 6 --drain 0 --threads "$threads" --connect-timeout 120 >/dev/null &
    gen=$!
    peak=0
    while kill -0 "$gen" 2>/dev/null; do
      r=$(rss); [ "$r" -gt "$peak" ] && peak=$r
      sleep 0.2
    done
    wait "$gen" || true
    awk -v b="$before" -v p="$peak" -v n="$n" 'BEGIN {
      printf "{\"probe\":\"memory\",\"connections\":%d,\"rss_before_kib\":%d,\"rss_idle_kib\":%d,\"kib_per_connection\":%.2f}\n", n, b, p, (p - b) / n }'
    ;;
  fanout)
    rate="${arg:-10}"
    out=$(mktemp)
    "${on_generator[@]}" "$GEN" bench --url "http://127.0.0.1:$port" --server-pid "$server" --clients 1000 --rooms 1 \
      --senders 4 --rate "$rate" --payload 256 --duration 14 --drain 2 --threads "$threads" >"$out" 2>/dev/null &
    gen=$!
    sleep 7 # connect and join take a few seconds; then a 6 s window inside the sending phase
    read -r u0 s0 <<<"$(cpu)"
    sleep 6
    read -r u1 s1 <<<"$(cpu)"
    wait "$gen" || true
    report fanout "$(python3 -c "print(4 * $rate * 999)")" 6 "$u0" "$s0" "$u1" "$s1" "$out"
    rm -f "$out"
    ;;
  rooms)
    rate="${arg:-1.111}"
    out=$(mktemp)
    "${on_generator[@]}" "$GEN" bench --url "http://127.0.0.1:$port" --server-pid "$server" --clients 10000 --rooms 1000 \
      --senders 1000 --rate "$rate" --payload 256 --duration 14 --drain 2 --threads "$threads" --connect-timeout 120 >"$out" 2>/dev/null &
    gen=$!
    # wait for the sending phase: the connect phase of 10,000 clients takes a few seconds
    for _ in $(seq 600); do
      curl -s "http://127.0.0.1:$port/metrics" | grep -q '^streamchat_messages_relayed_total [1-9]' && break
      sleep 0.1
    done
    sleep 2
    read -r u0 s0 <<<"$(cpu)"
    sleep 8
    read -r u1 s1 <<<"$(cpu)"
    wait "$gen" || true
    report rooms "$(python3 -c "print(1000 * $rate * 9)")" 8 "$u0" "$s0" "$u1" "$s1" "$out"
    rm -f "$out"
    ;;
  *)
    echo "usage: bench/quick.sh memory [N] | fanout [RATE] | rooms [RATE]" >&2
    exit 2
    ;;
esac
