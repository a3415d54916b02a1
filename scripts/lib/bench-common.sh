# Shared by scripts/bench-cluster and scripts/bench-capacity (sourced, not run): free
# ports, starting nodes and Redis servers on loopback, and per-process CPU. Everything
# started is recorded in the caller's `pids` array, which its EXIT trap kills.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# CPU seconds (user + system) a process has used so far.
proc_cpu() { python3 -c 'import sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); print((int(f[11])+int(f[12]))/100)' "$1"; }

# A node on `port` with the bench's limits and any extra args; its pid in $!.
serve() {
  local port=$1; shift
  "$BIN" serve --port "$port" "${LIMITS[@]}" "$@" >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && return 0; sleep 0.1; done
  echo "node on $port did not start" >&2; exit 1
}

# A Redis Cluster of MASTERS masters with one replica each, no persistence, each server
# in its own folder (a replica saves the snapshot it syncs from in its folder and loads it
# from there: replicas sharing one load one another's masters' data). Built by hand
# (slots, MEET, REPLICATE) so that one master works too (`redis-cli --cluster create`
# wants three). Waits until every replica has its first copy. Sets CLUSTER_URL,
# CLUSTER_MASTERS and CLUSTER_REPLICAS (pids, space separated) and CLUSTER_PORTS.
start_redis_cluster() {
  local masters=$1 dir i port bus ids=() buses=()
  dir=$(mktemp -d); CLUSTER_DIRS+=("$dir")
  CLUSTER_MASTERS="" CLUSTER_REPLICAS="" CLUSTER_PORTS=()
  for i in $(seq 0 $((2 * masters - 1))); do
    port=$(free_port); bus=$(free_port)
    mkdir -p "$dir/$port"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --cluster-enabled yes \
      --cluster-port "$bus" --cluster-config-file "$dir/$port/nodes.conf" --cluster-node-timeout 2000 \
      --repl-diskless-sync-delay 0 --dir "$dir/$port" >/dev/null 2>&1 &
    pids+=($!)
    if [ "$i" -lt "$masters" ]; then CLUSTER_MASTERS="$CLUSTER_MASTERS $!"; else CLUSTER_REPLICAS="$CLUSTER_REPLICAS $!"; fi
    CLUSTER_PORTS+=("$port"); buses+=("$bus")
  done
  for port in "${CLUSTER_PORTS[@]}"; do
    for _ in $(seq 100); do redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break; sleep 0.05; done
    ids+=("$(redis-cli -p "$port" CLUSTER MYID)")
  done
  for i in $(seq 0 $((masters - 1))); do
    redis-cli -p "${CLUSTER_PORTS[$i]}" CLUSTER ADDSLOTSRANGE $((16384 * i / masters)) $((16384 * (i + 1) / masters - 1)) >/dev/null
  done
  for port in "${CLUSTER_PORTS[@]:1}"; do redis-cli -p "$port" CLUSTER MEET 127.0.0.1 "${CLUSTER_PORTS[0]}" "${buses[0]}" >/dev/null; done
  for i in $(seq 0 $((masters - 1))); do
    port=${CLUSTER_PORTS[$((masters + i))]}
    for _ in $(seq 100); do redis-cli -p "$port" CLUSTER NODES | grep -q "${ids[$i]}" && break; sleep 0.1; done
    redis-cli -p "$port" CLUSTER REPLICATE "${ids[$i]}" >/dev/null
  done
  for port in "${CLUSTER_PORTS[@]}"; do
    for _ in $(seq 200); do
      info=$(redis-cli -p "$port" INFO replication; redis-cli -p "$port" CLUSTER INFO)
      if grep -q 'cluster_state:ok' <<<"$info" && { grep -q 'master_link_status:up' <<<"$info" || grep -q 'slave0:.*state=online' <<<"$info"; }; then break; fi
      sleep 0.1
    done
  done
  CLUSTER_URL="redis-cluster://127.0.0.1:${CLUSTER_PORTS[0]}"
  local sep='?'
  for port in "${CLUSTER_PORTS[@]:1:$((masters - 1))}"; do CLUSTER_URL="$CLUSTER_URL${sep}node=127.0.0.1:$port"; sep='&'; done
}
