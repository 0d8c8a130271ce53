#!/usr/bin/env bash
# Bulk transfer connect -> listen over loopback: SIZE from a pipe to /dev/null, sockit against
# socat (-u), ncat (--send-only/--recv-only), OpenBSD nc (-N), with iperf3 as the ceiling.
# Every contender runs in the same session, ROUNDS times, interleaved; we report medians and
# ratios to sockit. Traffic stays on 127.0.0.1; we kill only the PIDs we started.
#
# Usage: bench/bulk.sh [ROUNDS] [SIZE]     e.g. bench/bulk.sh 5 2G
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SIZE=${2:-2G}
BYTES=$(numfmt --from=iec "$SIZE")
MIB=$((BYTES / 1048576))

need() { command -v "$1" >/dev/null || { echo "installing $2" >&2; apt-get install -y "$2" >/dev/null; }; }
need socat socat; need ncat ncat; need nc netcat-openbsd; need iperf3 iperf3
cargo build --release -q
SOCKIT=$PWD/target/release/sockit

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_listen() { # port: poll the socket table (not a connection, which would use up the accept)
  for _ in $(seq 1 200); do ss -ltnH "sport = :$1" | grep -q . && return 0; sleep 0.02; done
  echo "server on port $1 did not start" >&2; return 1
}
now() { date +%s.%N; }

run_one() { # name -> prints MiB/s
  local name=$1 port; port=$(free_port)
  local srv t0 t1
  case $name in
    sockit) "$SOCKIT" listen -q "tcp://127.0.0.1:$port" >/dev/null </dev/null & srv=$! ;;
    socat)  socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" STDOUT >/dev/null & srv=$! ;;
    ncat)   ncat -l --recv-only 127.0.0.1 "$port" >/dev/null & srv=$! ;;
    nc)     nc -l 127.0.0.1 "$port" >/dev/null </dev/null & srv=$! ;;
    iperf3) iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null & srv=$! ;;
  esac
  wait_listen "$port"
  t0=$(now)
  case $name in
    sockit) head -c "$BYTES" /dev/zero | "$SOCKIT" connect "127.0.0.1:$port" ;;
    socat)  head -c "$BYTES" /dev/zero | socat -u STDIN "TCP:127.0.0.1:$port" ;;
    ncat)   head -c "$BYTES" /dev/zero | ncat --send-only 127.0.0.1 "$port" ;;
    nc)     head -c "$BYTES" /dev/zero | nc -N 127.0.0.1 "$port" ;;
    iperf3) iperf3 -c 127.0.0.1 -p "$port" -n "$BYTES" >/dev/null ;;
  esac
  timeout 60 tail --pid="$srv" -f /dev/null || kill "$srv"
  t1=$(now)
  python3 -c "print(f'{$MIB/($t1-$t0):.0f}')"
}

NAMES=(sockit socat ncat nc iperf3)
declare -A RES
for r in $(seq 1 "$ROUNDS"); do
  for n in "${NAMES[@]}"; do
    v=$(run_one "$n"); RES[$n]="${RES[$n]:-} $v"
    echo "round $r: $n $v MiB/s" >&2
  done
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
S=$(echo "${RES[sockit]}" | median)
echo
echo "Bulk transfer, $SIZE from a pipe to /dev/null over 127.0.0.1, median of $ROUNDS runs ($(nproc) cores):"
echo
echo "| tool | MiB/s (median) | runs | sockit / tool |"
echo "| --- | ---: | --- | ---: |"
for n in "${NAMES[@]}"; do
  m=$(echo "${RES[$n]}" | median)
  echo "| $n | $m | ${RES[$n]# } | $(python3 -c "print(f'{$S/$m:.2f}x')") |"
done
