#!/usr/bin/env bash
# WebSocket side by side.
#
# - gateway throughput (websockify's job): iperf3 through `sockit relay ws://... tcp://iperf3`
#   and through `websockify`, the WebSocket client side being the same for both (`sockit relay
#   tcp://... ws://gateway/`), and iperf3 direct for the ceiling; medians of ROUNDS runs;
# - echo request/response over WebSocket: `sockit bench --mode rr` (10 connections, 64-byte
#   binary messages) against `sockit serve echo=ws://`, python's websockets echo server and,
#   when it is installed (`cargo install websocat`), `websocat ws-l:... mirror:`;
# - chat fan-out to 100 WebSocket members: `sockit bench --mode fanout` against `sockit chat
#   ws://` (1,000 and 10,000 lines; zero loss required), beside the same room's TCP members.
# Each round runs every contender once, in an order that rotates. Loopback only; only the
# process groups started here are stopped.
#
# Usage: bench/websocket.sh [ROUNDS] [SECS]      (defaults 5 and 3; about 4 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-3}
command -v iperf3 >/dev/null || apt-get install -y iperf3 >/dev/null
command -v websockify >/dev/null || python3 -m pip install -q websockify >/dev/null
python3 -c 'import websockets' 2>/dev/null || python3 -m pip install -q websockets >/dev/null
WEBSOCAT=$(command -v websocat || ls /tmp/websocat/bin/websocat 2>/dev/null || true)
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh
TMP=$(mktemp -d)
trap 'cleanup; rm -rf "$TMP"' EXIT

cat >"$TMP/ws_echo.py" <<'PY'
import asyncio, sys, websockets
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=None, ping_interval=None):
        await asyncio.Future()
asyncio.run(main())
PY

json_field() { python3 -c 'import json,sys
try: print(json.load(sys.stdin)[sys.argv[1]])
except Exception: print(0)' "$1"; }
gbps() { python3 -c 'import json,sys
try:
    d = json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]
    print(f"{d / 1e9:.2f}")
except Exception: print(0)'; }

# --- gateways ---
IPERF=$(free_port); bg iperf3 -s -p "$IPERF" -B 127.0.0.1; wait_tcp "$IPERF"
GATES=(direct sockit websockify)
declare -A FRONT
FRONT[direct]=$IPERF
p=$(free_port); bg "$SOCKIT" relay -q "ws://127.0.0.1:$p/" "tcp://127.0.0.1:$IPERF"; wait_tcp "$p"; GW_SOCKIT=$p
p=$(free_port); bg websockify 127.0.0.1:"$p" 127.0.0.1:"$IPERF"; wait_tcp "$p"; GW_WSFY=$p
for n in sockit websockify; do
  gw=$GW_SOCKIT; [ "$n" = websockify ] && gw=$GW_WSFY
  f=$(free_port); bg "$SOCKIT" relay -q "tcp://127.0.0.1:$f" "ws://127.0.0.1:$gw/"; wait_tcp "$f"
  FRONT[$n]=$f
done
# interleaved DIGITS RESULT MEASURE NAME...: ROUNDS rounds of `MEASURE NAME` for every NAME,
# in an order that rotates each round; the median of each NAME's figures goes to RESULT[NAME].
interleaved() {
  local digits=$1 measure=$3 r k n v
  local -n out=$2
  shift 3
  local names=("$@")
  declare -A seen=()
  for r in $(seq 1 "$ROUNDS"); do
    k=$(( (r - 1) % ${#names[@]} ))
    for n in "${names[@]:k}" "${names[@]:0:k}"; do
      v=$("$measure" "$n")
      seen[$n]="${seen[$n]:-} $v"
      echo "round $r $measure $n: $v" >&2
      sleep 0.5
    done
  done
  # shellcheck disable=SC2086
  for n in "${names[@]}"; do out[$n]=$(median "$digits" ${seen[$n]}); done
}
gateway() { iperf3 -c 127.0.0.1 -p "${FRONT[$1]}" -t "$SECS" -J 2>/dev/null | gbps; }
declare -A GBPS
interleaved 2 GBPS gateway "${GATES[@]}"

# --- echo rr ---
ECHOS=(sockit python-websockets)
[ -n "$WEBSOCAT" ] && ECHOS+=(websocat)
declare -A EP
p=$(free_port); bg "$SOCKIT" serve -q "echo=ws://127.0.0.1:$p/"; wait_tcp "$p"; EP[sockit]=$p
p=$(free_port); bg python3 "$TMP/ws_echo.py" "$p"; wait_tcp "$p"; EP[python-websockets]=$p
if [ -n "$WEBSOCAT" ]; then
  p=$(free_port); bg "$WEBSOCAT" -b "ws-l:127.0.0.1:$p" mirror:; wait_tcp "$p"; EP[websocat]=$p
fi
echo_rr() { "$SOCKIT" bench -q --json --mode rr -c 10 --size 64 --duration "$SECS" "ws://127.0.0.1:${EP[$1]}/" 2>/dev/null | json_field ops_per_s; }
declare -A RR
interleaved 0 RR echo_rr "${ECHOS[@]}"

# --- chat fan-out ---
WSP=$(free_port); TCPP=$(free_port)
bg "$SOCKIT" chat -q --rate 0 "ws://127.0.0.1:$WSP/" "tcp://127.0.0.1:$TCPP"; wait_tcp "$WSP"; wait_tcp "$TCPP"
declare -A F=() FAN LOSS=()
for lines in 1000 10000; do
  for kind in ws tcp; do
    ep="tcp://127.0.0.1:$TCPP"; [ "$kind" = ws ] && ep="ws://127.0.0.1:$WSP/"
    for r in $(seq 1 "$ROUNDS"); do
      out=$("$SOCKIT" bench -q --json --mode fanout -c 100 --count "$lines" "$ep" 2>/dev/null || true)
      v=$(echo "$out" | json_field ops_per_s); l=$(echo "$out" | json_field lost)
      F["$kind-$lines"]="${F["$kind-$lines"]:-} $v"; LOSS["$kind-$lines"]=$(( ${LOSS["$kind-$lines"]:-0} + ${l:-0} ))
      echo "round $r fanout $kind $lines lines: $v deliveries/s, $l lost" >&2
      sleep 0.3
    done
    # shellcheck disable=SC2086
    FAN["$kind-$lines"]=$(median 0 ${F["$kind-$lines"]})
  done
done

ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b>0 else 'n/a')"; }
echo "WebSocket, medians of $ROUNDS interleaved runs of ${SECS} s ($(nproc) cores, $(date -u +%F)):"
echo
# ratio_table TITLE UNIT ARRAY NAME...: a table of ARRAY's figures and sockit's ratio to each.
ratio_table() {
  local -n vals=$3
  echo "| $1 | $2 | sockit / it |"
  echo "| --- | ---: | --- |"
  shift 3
  for n in "$@"; do echo "| $n | ${vals[$n]} | $(ratio "${vals[sockit]}" "${vals[$n]}") |"; done
}
ratio_table "iperf3 through" "Gbit/s" GBPS "${GATES[@]}"
echo
ratio_table "echo over ws (rr, 10 conns, 64 B)" "req/s" RR "${ECHOS[@]}"
echo
echo "| chat fan-out, 100 members | deliveries/s | lost (all runs) |"
echo "| --- | ---: | ---: |"
for lines in 1000 10000; do
  for kind in ws tcp; do
    echo "| $kind, $lines lines | ${FAN["$kind-$lines"]} | ${LOSS["$kind-$lines"]} |"
  done
done
