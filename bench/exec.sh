#!/usr/bin/env bash
# Programs on a connection and the cost of seeing the traffic, against the peers that do it.
#
# 1. `--exec cat` servers: sockit `listen -k --exec cat`, `ncat -l -k -e /bin/cat` and socat
#    `TCP-LISTEN,fork EXEC:cat`: request/response through the child (64-byte requests, 1 and
#    10 connections), connections served per second (each starts a program, sends a line
#    through it and reads it back to the end), and a 2 MiB echo that
#    must come back whole (ncat 7.93 cuts it, nmap/nmap#2510; a cut run shows as "failed").
# 2. `-x` (hex dump) cost: `relay` in front of `serve echo`: as it runs by default (splice),
#    on the buffered pump (`--idle-timeout` takes it there, as `-x` does) and with
#    `-x /dev/null`; request/response at 10 connections and the relay's CPU per request.
#
# The load generator is `sockit bench`. Each round runs every contender once, in an order
# that rotates, so drift on this shared machine falls on all of them; figures are medians of
# ROUNDS runs of SECS seconds. Loopback only; only the process groups started here are stopped.
#
# Usage: bench/exec.sh [--busy] [ROUNDS] [SECS]      (defaults 5 and 2; about 4 minutes)
#   --busy: the same rounds with one core kept busy by a spinning process the whole time.
set -euo pipefail
cd "$(dirname "$0")/.."
BUSY=0; [ "${1:-}" = --busy ] && { BUSY=1; shift; }
ROUNDS=${1:-5}
SECS=${2:-2}
for p in socat:socat ncat:ncat; do
  command -v "${p%%:*}" >/dev/null || apt-get install -y "${p#*:}" >/dev/null
done
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh
[ "$BUSY" = 1 ] && { busy_core; echo "With one core kept busy by a spinning process:"; }
server_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
json() { python3 -c 'import json,sys
try: d=json.load(sys.stdin); print(d.get("ops_per_s", 0), d.get("ops", 0), d.get("errors", 0) + d.get("lost", 0))
except Exception: print(0, 0, 1)'; }

# Connections served per second, each with its own program: 4 clients that each connect,
# send a line, half-close and read the echo to its end (a connect alone would only measure
# the kernel's accept queue). Bounded by SECS and by 5,000 connections per client.
served() {
  python3 - "$1" "$SECS" <<'PY'
import socket, sys, threading, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + secs
done, bad = [0], [0]
def client():
    for _ in range(5000):
        if time.monotonic() > end:
            return
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"x\n"); s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                b = s.recv(64)
                if not b: break
                got += b
            s.close()
            if got == b"x\n": done[0] += 1
            else: bad[0] += 1
        except OSError:
            bad[0] += 1
t0 = time.monotonic()
ts = [threading.Thread(target=client) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(f"{done[0] / (time.monotonic() - t0):.1f}", done[0], bad[0])
PY
}

NAMES=(sockit ncat socat)
declare -A PORT
for n in "${NAMES[@]}"; do
  p=$(free_port)
  case $n in
    sockit) bg "$SOCKIT" listen -q -k --exec cat "tcp://127.0.0.1:$p" ;;
    ncat) bg ncat -l -k -e /bin/cat 127.0.0.1 "$p" ;;
    socat) bg socat "TCP-LISTEN:$p,bind=127.0.0.1,fork,reuseaddr" EXEC:cat ;;
  esac
  wait_tcp "$p"
  PORT[$n]=$p
done

declare -A R LOST
for test in rr1 rr10 conn; do
  declare -A V=()
  for r in $(seq 1 "$ROUNDS"); do
    k=$(( (r - 1) % ${#NAMES[@]} ))
    for n in "${NAMES[@]:k}" "${NAMES[@]:0:k}"; do
      case $test in
        rr1) args=(--mode rr -c 1) ;;
        rr10) args=(--mode rr -c 10) ;;
      esac
      if [ "$test" = conn ]; then
        read -r rate _ bad < <(served "${PORT[$n]}")
      else
        read -r rate _ bad < <("$SOCKIT" bench -q --json "${args[@]}" --duration "$SECS" "tcp://127.0.0.1:${PORT[$n]}" 2>/dev/null | json)
      fi
      [ "$bad" = 0 ] || { echo "$test round $r $n: $bad errors or lost" >&2; LOST[$n,$test]=$(( ${LOST[$n,$test]:-0} + bad )); }
      V[$n]="${V[$n]:-} $rate"
      echo "$test round $r $n: $rate/s" >&2
      sleep 0.5 # the children exit and are reaped between runs
    done
  done
  for n in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    R[$n,$test]=$(median 0 ${V[$n]})
  done
done
# 2 MiB through the child, checked byte for byte by the load generator (one try each).
declare -A BIG
for n in "${NAMES[@]}"; do
  if timeout 20 "$SOCKIT" bench -q --mode stream -c 1 -n 32 --size 65536 --duration 15 \
      "tcp://127.0.0.1:${PORT[$n]}" >/dev/null 2>&1; then BIG[$n]=whole; else BIG[$n]=failed; fi
done

# -x cost: relay with and without the dump, in front of one echo server.
ECHO=$(free_port); bg "$SOCKIT" serve -q "echo=tcp://127.0.0.1:$ECHO"; wait_tcp "$ECHO"
XN=(splice pump dump)
declare -A XP XS
for n in "${XN[@]}"; do
  p=$(free_port)
  case $n in
    splice) bg "$SOCKIT" relay -q "tcp://127.0.0.1:$p" "tcp://127.0.0.1:$ECHO" ;;
    pump) bg "$SOCKIT" relay -q --idle-timeout 600 "tcp://127.0.0.1:$p" "tcp://127.0.0.1:$ECHO" ;;
    dump) bg "$SOCKIT" relay -q -x /dev/null "tcp://127.0.0.1:$p" "tcp://127.0.0.1:$ECHO" ;;
  esac
  wait_tcp "$p"
  XP[$n]=$p; XS[$n]=${STARTED[-1]}
done
declare -A XR XU
declare -A V=() U=()
for r in $(seq 1 "$ROUNDS"); do
  k=$(( (r - 1) % ${#XN[@]} ))
  for n in "${XN[@]:k}" "${XN[@]:0:k}"; do
    before=$(server_ticks "${XS[$n]}")
    read -r rate ops _ < <("$SOCKIT" bench -q --json --mode rr -c 10 --duration "$SECS" "tcp://127.0.0.1:${XP[$n]}" 2>/dev/null | json)
    after=$(server_ticks "${XS[$n]}")
    us=$(python3 -c "print(f'{($after-$before)/$HZ*1e6/$ops:.2f}' if $ops > 0 else 0)")
    V[$n]="${V[$n]:-} $rate"; U[$n]="${U[$n]:-} $us"
    echo "-x round $r $n: $rate req/s, relay $us µs/req" >&2
  done
done
for n in "${XN[@]}"; do
  # shellcheck disable=SC2086
  XR[$n]=$(median 0 ${V[$n]}); XU[$n]=$(median 2 ${U[$n]})
done

ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b>0 else 'n/a')"; }
echo "Programs on a connection (\`--exec cat\` and its peers), medians of $ROUNDS interleaved runs of ${SECS} s ($(nproc) cores, $(date -u +%F)):"
echo
echo "| server | rr 1 (req/s) | rr 10 | conn/s (a program each) | 2 MiB echo | sockit / it: rr 1, rr 10, conn/s |"
echo "| --- | ---: | ---: | ---: | --- | --- |"
shown() { if [ "${LOST[$1,$2]:-0}" -gt 0 ]; then echo "${R[$1,$2]} (${LOST[$1,$2]} lost)"; else echo "${R[$1,$2]}"; fi; }
# A server that lost answers has no rate to compare with.
vs() { if [ "${LOST[$1,$2]:-0}" -gt 0 ]; then echo n/a; else ratio "${R[sockit,$2]}" "${R[$1,$2]}"; fi; }
for n in "${NAMES[@]}"; do
  echo "| $n | $(shown "$n" rr1) | $(shown "$n" rr10) | $(shown "$n" conn) | ${BIG[$n]} | $(vs "$n" rr1), $(vs "$n" rr10), $(vs "$n" conn) |"
done
echo
echo "The cost of \`-x\`: \`relay\` in front of \`serve echo\`, rr at 10 connections:"
echo
echo "| relay | req/s | relay CPU µs/req | req/s / the pump's |"
echo "| --- | ---: | ---: | --- |"
for n in "${XN[@]}"; do
  echo "| $n | ${XR[$n]} | ${XU[$n]} | $(ratio "${XR[$n]}" "${XR[pump]}") |"
done
