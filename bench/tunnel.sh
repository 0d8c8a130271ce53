#!/usr/bin/env bash
# sockit's tunnel (serve tunnel= + expose) against bore's (bore server + bore local), in the
# same run, both on loopback: iperf3 through each (MiB/s), visitors per second (connect,
# one byte there and back through the whole path, close; 4 visitors at a time), and memory
# per idle visitor (anonymous memory of gateway + client, before and after N visitors that
# stay connected). Medians of ROUNDS rounds of SECS seconds, interleaved; ratios are
# sockit / bore. sockit encrypts (TLS) and bore does not.
# bore comes from `cargo install bore-cli` (BORE=path to override), built outside the repo.
# bore's server always listens on port 7835. Loopback only; we stop only what we started.
#
# Usage: bench/tunnel.sh [ROUNDS] [SECS] [N]      (defaults 5, 3 and 300)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-3}
N=${3:-300}
BORE=${BORE:-$(command -v bore || echo /tmp/bore/bin/bore)}
[ -x "$BORE" ] || { echo "bore not found: cargo install bore-cli --root /tmp/bore (or set BORE)" >&2; exit 1; }
command -v iperf3 >/dev/null || apt-get install -y iperf3 >/dev/null
ulimit -n $((N * 8 + 1024))
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tunnel-bench.XXXXXX")
trap 'cleanup; rm -rf "$WORK"' EXIT
export SOCKIT_SECRET=bench-secret BORE_SECRET=bench-secret XDG_STATE_HOME=$WORK/state

IPERF=$(free_port); ECHO=$(free_port)
bg iperf3 -s -B 127.0.0.1 -p "$IPERF"
bg "$SOCKIT" serve -q "echo=tcp://127.0.0.1:$ECHO"
wait_tcp "$IPERF"; wait_tcp "$ECHO"

# The gateways.
GW=$(free_port)
setsid "$SOCKIT" serve "tunnel=tls://127.0.0.1:$GW" --tunnel-host 127.0.0.1 </dev/null >/dev/null 2>"$WORK/gw.log" &
STARTED+=($!); SOCKIT_GW=$!
wait_tcp "$GW"
PIN=$(grep -o 'fingerprint [0-9A-F:]*' "$WORK/gw.log" | cut -d' ' -f2)
bg "$BORE" server --bind-addr 127.0.0.1
BORE_GW=${STARTED[-1]}
wait_tcp 7835

# tunnel NAME LOCAL_PORT: a public port in PUBLIC, the client's pid in CLIENT (no subshell,
# so the client is in STARTED and stopped at exit).
tunnel() {
  local public; public=$(free_port)
  if [ "$1" = sockit ]; then
    bg "$SOCKIT" expose "tcp://127.0.0.1:$2" --via "tls://127.0.0.1:$GW" --pin "$PIN" --port "$public"
  else
    bg "$BORE" local "$2" --local-host 127.0.0.1 --to 127.0.0.1 --port "$public"
  fi
  CLIENT=${STARTED[-1]}
  wait_tcp "$public"
  PUBLIC=$public
}
declare -A IPORT EPORT CLIENTS
for t in sockit bore; do
  tunnel $t "$IPERF"; IPORT[$t]=$PUBLIC; CLIENTS[$t]="$CLIENT"
  tunnel $t "$ECHO"; EPORT[$t]=$PUBLIC; CLIENTS[$t]="${CLIENTS[$t]} $CLIENT"
done

iperf() { # PORT -> MiB/s received
  iperf3 -c 127.0.0.1 -p "$1" -t "$SECS" -J 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/8/2**20)' || echo 0
}
visits() { # PORT -> visitors/s: connect, a byte there and back, close; 4 at a time
  python3 - "$1" "$SECS" <<'PY'
import socket, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
done = [0]
end = time.monotonic() + secs
def visitor():
    while time.monotonic() < end:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"x")
            if s.recv(1) == b"x":
                done[0] += 1
            s.close()
        except OSError:
            pass
ts = [threading.Thread(target=visitor) for _ in range(4)]
start = time.monotonic()
for t in ts: t.start()
for t in ts: t.join()
print(done[0] / (time.monotonic() - start))
PY
}
declare -A RES
for r in $(seq 1 "$ROUNDS"); do
  for t in sockit bore; do
    RES[bulk_$t]="${RES[bulk_$t]:-} $(iperf "${IPORT[$t]}")"
    RES[visit_$t]="${RES[visit_$t]:-} $(visits "${EPORT[$t]}")"
  done
  echo "round $r done" >&2
done

mem() { # NAME GATEWAY_PID CLIENT_PIDS... -> KiB per idle visitor
  local port=${EPORT[$1]} pids="${*:2}"
  python3 - "$port" "$N" $pids <<'PY'
import socket, subprocess, sys, time
port, n, pids = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
def kib():
    return sum(int(subprocess.run(["bench/pss_tree.py", p], capture_output=True, text=True).stdout or 0) for p in pids)
before = kib()
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    socks.append(s)
time.sleep(1.0)  # let both sides settle; a measurement, not a synchronisation
after = kib()
print(f"{(after - before) / n:.1f}")
for s in socks:
    s.close()
PY
}
MEM_S=$(mem sockit "$SOCKIT_GW" ${CLIENTS[sockit]})
MEM_B=$(mem bore "$BORE_GW" ${CLIENTS[bore]})

row() { # label key
  local s b
  s=$(median 0 ${RES[$2_sockit]}); b=$(median 0 ${RES[$2_bore]})
  echo "| $1 | $s | $b | $(python3 -c "print(f'{$s/max($b,1):.2f}x')") |"
}
echo "sockit's tunnel (TLS) against bore's (plain TCP), loopback, median of $ROUNDS rounds of $SECS s ($(nproc) cores):"
echo
echo "| job | sockit | bore | sockit / bore |"
echo "| --- | ---: | ---: | ---: |"
row "iperf3 through the tunnel (MiB/s)" bulk
row "visitors per second (connect, 1 byte both ways, close; 4 at a time)" visit
echo "| memory per idle visitor, gateway + client (KiB; $N visitors) | $MEM_S | $MEM_B | $(python3 -c "print(f'{$MEM_S/max($MEM_B,0.1):.2f}x')") |"
