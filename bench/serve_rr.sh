#!/usr/bin/env bash
# Echo request/response against `sockit serve echo` and its peers, with the server's own CPU
# time per request: sockit, the tokio reference (bench/tokio-echo), xinetd's built-in echo
# (private config on a free port) and socat (TCP-LISTEN,fork,reuseaddr PIPE, as issue #4
# names it). The load generator is `sockit bench --mode rr`, 64-byte requests.
#
# Every server runs for the whole script; each round runs every contender once, in an order
# that rotates from round to round, so drift on this shared machine falls on all of them.
# req/s are medians of ROUNDS runs of SECS seconds; "server µs/req" is the median server CPU
# (user + system, children included) per request at 100 connections: it does not depend on
# how the two cores were shared with the load generator, so it moves less between runs.
# Loopback only; only the process groups started here are stopped.
#
# Usage: bench/serve_rr.sh [ROUNDS] [SECS]      (defaults 5 and 2; about 3 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-2}
for p in socat:socat xinetd:xinetd; do
  command -v "${p%%:*}" >/dev/null || apt-get install -y "${p#*:}" >/dev/null
done
cargo build --release -q -p sockit -p tokio-echo
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh
TMP=$(mktemp -d)
trap 'cleanup; rm -rf "$TMP"' EXIT

NAMES=(sockit tokio xinetd socat)
declare -A PORT SRV
for n in "${NAMES[@]}"; do
  p=$(free_port)
  case $n in
    sockit) bg "$SOCKIT" serve -q "echo=tcp://127.0.0.1:$p" ;;
    tokio) bg target/release/tokio-echo "$p" ;;
    socat) bg socat "TCP-LISTEN:$p,bind=127.0.0.1,fork,reuseaddr" PIPE ;;
    xinetd)
      xinetd_echo_conf "$TMP/xinetd.conf" "$p"
      bg xinetd -dontfork -f "$TMP/xinetd.conf" -pidfile "$TMP/xinetd.pid" ;;
  esac
  wait_tcp "$p"
  PORT[$n]=$p
  SRV[$n]=${STARTED[-1]}
done
# xinetd's echo children are reaped by the daemon, whose pid is in its pid file.
[ -s "$TMP/xinetd.pid" ] && SRV[xinetd]=$(cat "$TMP/xinetd.pid")
# All CPU a server and its reaped children used, in clock ticks.
server_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

declare -A RR US
for c in 1 10 100; do
  declare -A V=() U=()
  for r in $(seq 1 "$ROUNDS"); do
    k=$(( (r - 1) % ${#NAMES[@]} ))
    for n in "${NAMES[@]:k}" "${NAMES[@]:0:k}"; do
      before=$(server_ticks "${SRV[$n]}")
      j=$("$SOCKIT" bench -q --json --mode rr -c "$c" --duration "$SECS" "tcp://127.0.0.1:${PORT[$n]}" 2>/dev/null || true)
      sleep 0.3 # the connections' children exit and are reaped; a measurement pause
      after=$(server_ticks "${SRV[$n]}")
      read -r rate ops < <(echo "$j" | python3 -c 'import json,sys
try: d=json.load(sys.stdin); print(d["ops_per_s"], d["ops"])
except Exception: print(0, 0)')
      us=$(python3 -c "print(f'{($after-$before)/$HZ*1e6/$ops:.2f}' if $ops > 0 else 0)")
      V[$n]="${V[$n]:-} $rate"; U[$n]="${U[$n]:-} $us"
      echo "c=$c round $r $n: $rate req/s, server $us µs/req" >&2
    done
  done
  for n in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    RR[$n,$c]=$(median 0 ${V[$n]}); US[$n,$c]=$(median 2 ${U[$n]})
  done
done

ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b>0 else 'n/a')"; }
echo "Echo request/response, 64-byte requests, medians of $ROUNDS interleaved runs of ${SECS} s ($(nproc) cores, $(date -u +%F)):"
echo
echo "| contender | rr 1 (req/s) | rr 10 | rr 100 | server µs/req at 100 | sockit / it at 1, 10, 100 |"
echo "| --- | ---: | ---: | ---: | ---: | --- |"
for n in "${NAMES[@]}"; do
  echo "| $n | ${RR[$n,1]} | ${RR[$n,10]} | ${RR[$n,100]} | ${US[$n,100]} | $(ratio "${RR[sockit,1]}" "${RR[$n,1]}"), $(ratio "${RR[sockit,10]}" "${RR[$n,10]}"), $(ratio "${RR[sockit,100]}" "${RR[$n,100]}") |"
done
