#!/usr/bin/env bash
# QUIC against TLS over TCP, both sockit, in the same run: bulk (one stream into a discard
# server), request/response at 10 connections (echo), and new connections per second
# (handshake, then close). Medians of ROUNDS rounds of SECS seconds each, rounds
# interleaved; the ratio is quic / tls. Loopback only; we stop only what we started.
#
# Usage: bench/quic.sh [ROUNDS] [SECS]      (defaults 5 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-3}
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh

DQ=$(free_port); DT=$(free_port); EQ=$(free_port); ET=$(free_port)
bg "$SOCKIT" serve -q "discard=quic://127.0.0.1:$DQ" "discard=tls://127.0.0.1:$DT" \
  "echo=quic://127.0.0.1:$EQ" "echo=tls://127.0.0.1:$ET"
wait_tcp "$DT"; wait_tcp "$ET"

# one MODE KIND PORT ARGS...: the figure a bench run reports (MiB/s for stream, ops/s else).
one() {
  local mode=$1 kind=$2 port=$3; shift 3
  local key=ops_per_s
  [ "$mode" = stream ] && key=mib_per_s
  "$SOCKIT" bench -q --json --insecure --mode "$mode" -d "$SECS" "$@" "$kind://127.0.0.1:$port" 2>/dev/null |
    python3 -c "import json,sys; print(json.load(sys.stdin)['$key'])"
}

declare -A RES
for r in $(seq 1 "$ROUNDS"); do
  for kind in quic tls; do
    if [ "$kind" = quic ]; then d=$DQ; e=$EQ; else d=$DT; e=$ET; fi
    RES[bulk_$kind]="${RES[bulk_$kind]:-} $(one stream $kind $d --sink)"
    RES[rr_$kind]="${RES[rr_$kind]:-} $(one rr $kind $e --conns 10)"
    RES[conn_$kind]="${RES[conn_$kind]:-} $(one connect $kind $e --conns 4)"
  done
  echo "round $r done" >&2
done

row() { # label key unit
  local q t
  q=$(median 0 ${RES[$2_quic]}); t=$(median 0 ${RES[$2_tls]})
  echo "| $1 | $q | $t | $(python3 -c "print(f'{$q/$t:.2f}x')") |"
}
echo "QUIC against TLS over TCP, both sockit, loopback, median of $ROUNDS rounds of $SECS s ($(nproc) cores):"
echo
echo "| job | quic:// | tls:// | quic / tls |"
echo "| --- | ---: | ---: | ---: |"
row "bulk, one stream (MiB/s)" bulk
row "request/response, 10 connections (exchanges/s)" rr
row "new connections: handshake, then close (per s)" conn
