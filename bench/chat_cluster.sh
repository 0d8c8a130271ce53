#!/usr/bin/env bash
# A chat room across nodes (`--bus redis://`) against the same room on one node: fan-out with
# the sender on node A and 100 receivers on node B (two nodes), then three nodes with the
# receivers spread over all three, 1,000 and 10,000 lines, every line checked (zero loss, no duplicate, in
# order), deliveries per second; and what one cross-node line costs: the nodes' CPU and Redis's
# network bytes per line sent. Medians of ROUNDS runs; loopback only; a private redis-server on a
# free port; only the process groups started here are stopped.
#
# Usage: bench/chat_cluster.sh [ROUNDS]      (default 3; about 2 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
command -v redis-server >/dev/null || apt-get install -y redis-server >/dev/null
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

RP=$(free_port)
bg redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no
wait_tcp "$RP"
redis_bytes() {
  python3 - "$RP" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"INFO stats\r\n")
data = b""
while b"total_net_output_bytes" not in data or not data.endswith(b"\r\n"):
    data += s.recv(65536)
vals = dict(l.split(":", 1) for l in data.decode().splitlines() if ":" in l)
print(int(vals["total_net_input_bytes"]) + int(vals["total_net_output_bytes"]))
PY
}

chat_node() { # PORT [bus]
  if [ "${2:-}" = bus ]; then
    bg "$SOCKIT" chat -q --rate 0 --bus "redis://127.0.0.1:$RP" --room bench "tcp://127.0.0.1:$1"
  else
    bg "$SOCKIT" chat -q --rate 0 "tcp://127.0.0.1:$1"
  fi
  wait_tcp "$1"
}
ONE=$(free_port); chat_node "$ONE"; ONE_PID=${STARTED[-1]}
A=$(free_port); chat_node "$A" bus; A_PID=${STARTED[-1]}
B=$(free_port); chat_node "$B" bus; B_PID=${STARTED[-1]}
sleep 1

fan() { # LINES TARGET [SENDER [MORE_RECEIVER_PORTS...]]: prints deliveries/s and lost+dup+reordered
  local extra=()
  [ -n "${3:-}" ] && extra=(--send-to "tcp://127.0.0.1:$3")
  for p in "${@:4}"; do extra+=(--receivers-also "tcp://127.0.0.1:$p"); done
  "$SOCKIT" bench -q --json --mode fanout --conns 100 --count "$1" --duration 60 "${extra[@]}" "tcp://127.0.0.1:$2" 2>/dev/null |
    python3 -c 'import json,sys
try:
    d = json.load(sys.stdin); print(d["ops_per_s"], d["lost"] + d["duplicated"] + d["reordered"] + d["errors"])
except Exception: print(0, -1)'
}

declare -A R BAD
run_case() { # NAME LINES TARGET [SENDER [MORE...]]
  local v=() bad=0
  for _ in $(seq 1 "$ROUNDS"); do
    read -r rate b < <(fan "$2" "$3" "${@:4}")
    v+=("$rate"); bad=$((bad + b))
    echo "$1 $2: $rate deliveries/s, $b lost/dup/reordered" >&2
    sleep 0.5
  done
  R[$1,$2]=$(median 0 "${v[@]}"); BAD[$1,$2]=$bad
}
for lines in 1000 10000; do
  run_case one "$lines" "$ONE"
  run_case two "$lines" "$B" "$A"
done
# Three nodes, the receivers spread over all three (the sender on A).
C=$(free_port); chat_node "$C" bus; sleep 1
for lines in 1000 10000; do run_case three "$lines" "$B" "$A" "$A" "$C"; done

# Cost of one cross-node line: both nodes' CPU and Redis's traffic over one 10,000-line run
# (100 receivers on B, the sender on A).
before_cpu=$(( $(ticks "$A_PID") + $(ticks "$B_PID") )); before_net=$(redis_bytes)
fan 10000 "$B" "$A" >/dev/null
after_cpu=$(( $(ticks "$A_PID") + $(ticks "$B_PID") )); after_net=$(redis_bytes)
CPU_US=$(python3 -c "print(f'{($after_cpu - $before_cpu) / $HZ * 1e6 / 10000:.1f}')")
NET_B=$(python3 -c "print(f'{($after_net - $before_net) / 10000:.0f}')")

ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b>0 else 'n/a')"; }
echo "Chat fan-out across nodes, 100 receivers, medians of $ROUNDS runs ($(nproc) cores, $(date -u +%F)):"
echo
echo "| room | lines | deliveries/s | lost, duplicated or reordered (all runs) | / one node |"
echo "| --- | ---: | ---: | ---: | --- |"
for lines in 1000 10000; do
  for n in one two three; do
    echo "| $n | $lines | ${R[$n,$lines]} | ${BAD[$n,$lines]} | $(ratio "${R[$n,$lines]}" "${R[one,$lines]}") |"
  done
done
echo
echo "One cross-node line (sender on A, 100 receivers on B): $CPU_US µs of the two nodes' CPU and $NET_B bytes of Redis traffic (in + out; the third node is subscribed too)."
