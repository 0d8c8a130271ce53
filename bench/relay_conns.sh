#!/usr/bin/env bash
# Connections per second through each relay (connect, relay connects onward, close) into a
# discard server: `sockit bench --mode connect`, 4 connectors, SECS seconds, medians of
# ROUNDS. sockit relay, socat TCP-LISTEN,fork and ncat --sh-exec, with no relay as the
# ceiling. socat gets backlog=1024 (its default of 5 drops SYNs under load); ncat has no such
# option. Loopback only; we stop only the process groups we started.
#
# Usage: bench/relay_conns.sh [ROUNDS] [SECS]      (defaults 3 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-3}
for p in socat ncat; do command -v "$p" >/dev/null || apt-get install -y "$p" >/dev/null; done
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh

SINK=$(free_port)
bg "$SOCKIT" serve -q "discard=tcp://127.0.0.1:$SINK"
wait_tcp "$SINK"
declare -A PORT=([direct]=$SINK)
for n in sockit socat ncat; do
  p=$(free_port)
  case $n in
    sockit) bg "$SOCKIT" relay -q "tcp://127.0.0.1:$p" "tcp://127.0.0.1:$SINK" ;;
    socat) bg socat "TCP-LISTEN:$p,bind=127.0.0.1,fork,reuseaddr,backlog=1024" "TCP:127.0.0.1:$SINK" ;;
    ncat) bg ncat -l -k -m 1000 127.0.0.1 "$p" --sh-exec "ncat 127.0.0.1 $SINK" ;;
  esac
  wait_tcp "$p"
  PORT[$n]=$p
done
declare -A RES
for _ in $(seq 1 "$ROUNDS"); do
  for n in direct sockit socat ncat; do
    r=$("$SOCKIT" bench -q --json --mode connect -c 4 -d "$SECS" "tcp://127.0.0.1:${PORT[$n]}" 2>/dev/null |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["ops_per_s"])' || echo 0)
    RES[$n]="${RES[$n]:-} $r"
  done
done
s=$(median 0 ${RES[sockit]})
echo "| through | connections/s (median of $ROUNDS) | sockit / it |"
echo "| --- | ---: | ---: |"
for n in direct sockit socat ncat; do
  m=$(median 0 ${RES[$n]})
  echo "| $n | $m | $(python3 -c "print(f'{$s/max($m,1):.2f}x')") |"
done
