#!/usr/bin/env bash
# Memory of `sockit listen -k` per idle client: anonymous memory (bench/pss_tree.py) before and after N
# connections that send one line and then stay idle, compared with `ncat -l -k` doing the
# same job.
# Loopback only; we stop only the PIDs we started.
#
# Usage: bench/idle_memory.sh [N]     (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
ulimit -n $((N * 2 + 256))
command -v ncat >/dev/null || apt-get install -y ncat >/dev/null
cargo build --release -q
SOCKIT=$PWD/target/release/sockit

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

measure() { # name cmd... -> "name before after per_client"
  local name=$1; shift
  local port; port=$(free_port)
  "$@" "$port" </dev/null >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 1 200); do ss -ltnH "sport = :$port" | grep -q . && break; sleep 0.02; done
  local before; before=$(bench/pss_tree.py "$pid")
  python3 - "$port" "$N" "$pid" "$name" "$before" <<'PY'
import socket, subprocess, sys, time
port, n, pid, name, before = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"hello %d\n" % i)
    socks.append(s)
time.sleep(1.0)  # let the server settle; this is a measurement, not a synchronisation
after = int(subprocess.run(["bench/pss_tree.py", pid], capture_output=True, text=True).stdout)
print(f"| {name} | {n} | {before} | {after} | {(after - before) / n:.1f} |")
for s in socks:
    s.close()
PY
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

echo "| server | idle clients | before (KiB) | after (KiB) | KiB per client |"
echo "| --- | ---: | ---: | ---: | ---: |"
measure "sockit listen -k" sh -c 'exec '"$SOCKIT"' listen -q -k tcp://127.0.0.1:$0'
measure "ncat -l -k" sh -c 'exec ncat -l -k -m '"$((N * 2))"' 127.0.0.1 $0'
