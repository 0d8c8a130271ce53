#!/usr/bin/env bash
# Proxies side by side: `sockit serve socks5` against microsocks, `sockit serve http-proxy`
# against `ncat -l --proxy-type http` and tinyproxy.
#
# - throughput: iperf3 through each proxy, the client side being the same for all
#   (`sockit relay --proxy URL` in front of the iperf3 server), medians of ROUNDS runs of SECS s;
# - connections per second: `sockit bench --mode connect --proxy URL` (each connection is a
#   negotiation and a connection to the target), 4 connectors;
# - memory per idle tunnel: RSS of the proxy before and after `bench --hold 500` through it.
# Each round runs every proxy once, in an order that rotates. Loopback only; only the process
# groups started here are stopped.
#
# Usage: bench/proxy.sh [ROUNDS] [SECS]      (defaults 5 and 3; about 5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
SECS=${2:-3}
for p in microsocks ncat tinyproxy iperf3; do
  command -v "$p" >/dev/null || apt-get install -y "$p" >/dev/null
done
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh
TMP=$(mktemp -d)
trap 'cleanup; rm -rf "$TMP"' EXIT

IPERF=$(free_port); bg iperf3 -s -p "$IPERF" -B 127.0.0.1; wait_tcp "$IPERF"
ECHO=$(free_port); bg "$SOCKIT" serve -q "echo=tcp://127.0.0.1:$ECHO"; wait_tcp "$ECHO"

NAMES=(sockit-socks5 microsocks sockit-http ncat-http tinyproxy)
declare -A PORT URL PID
for n in "${NAMES[@]}"; do
  p=$(free_port)
  case $n in
    sockit-socks5) bg "$SOCKIT" serve -q "socks5=tcp://127.0.0.1:$p"; URL[$n]=socks5://127.0.0.1:$p ;;
    microsocks) bg microsocks -i 127.0.0.1 -p "$p"; URL[$n]=socks5://127.0.0.1:$p ;;
    sockit-http) bg "$SOCKIT" serve -q "http-proxy=tcp://127.0.0.1:$p"; URL[$n]=http://127.0.0.1:$p ;;
    ncat-http) bg ncat -l -k --proxy-type http 127.0.0.1 "$p"; URL[$n]=http://127.0.0.1:$p ;;
    tinyproxy)
      printf 'Port %s\nListen 127.0.0.1\nTimeout 600\nAllow 127.0.0.1\nMaxClients 2000\nLogLevel Critical\n' "$p" >"$TMP/tinyproxy.conf"
      bg tinyproxy -d -c "$TMP/tinyproxy.conf"; URL[$n]=http://127.0.0.1:$p ;;
  esac
  wait_tcp "$p"
  PORT[$n]=$p; PID[$n]=${STARTED[-1]}
done

# The same client side for every proxy: a relay that reaches iperf3 through it.
declare -A FRONT
for n in "${NAMES[@]}"; do
  f=$(free_port)
  bg "$SOCKIT" relay -q --proxy "${URL[$n]}" "tcp://127.0.0.1:$f" "tcp://127.0.0.1:$IPERF"
  wait_tcp "$f"
  FRONT[$n]=$f
done

declare -A GBPS CONNS
declare -A V=() C=()
for r in $(seq 1 "$ROUNDS"); do
  k=$(( (r - 1) % ${#NAMES[@]} ))
  for n in "${NAMES[@]:k}" "${NAMES[@]:0:k}"; do
    g=$(iperf3 -c 127.0.0.1 -p "${FRONT[$n]}" -t "$SECS" -J 2>/dev/null | python3 -c 'import json,sys
try:
    d = json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]
    print(f"{d / 1e9:.2f}")
except Exception: print(0)')
    c=$("$SOCKIT" bench -q --json --mode connect -c 4 --duration "$SECS" --proxy "${URL[$n]}" "tcp://127.0.0.1:$ECHO" 2>/dev/null | python3 -c 'import json,sys
try: print(json.load(sys.stdin)["ops_per_s"])
except Exception: print(0)')
    V[$n]="${V[$n]:-} $g"; C[$n]="${C[$n]:-} $c"
    echo "round $r $n: $g Gbit/s, $c conn/s" >&2
    sleep 0.5
  done
done
for n in "${NAMES[@]}"; do
  # shellcheck disable=SC2086
  GBPS[$n]=$(median 2 ${V[$n]}); CONNS[$n]=$(median 0 ${C[$n]})
done

# Memory per idle tunnel: 500 tunnels held open through each proxy, RSS before and after.
HOLD=500
declare -A KIB
for n in "${NAMES[@]}"; do
  before=0
  for p in $(pgrep -g "${PID[$n]}"); do r=$(rss_kib "$p" 2>/dev/null || true); before=$((before + ${r:-0})); done
  "$SOCKIT" bench -q --mode connect --hold "$HOLD" --duration 4 --proxy "${URL[$n]}" "tcp://127.0.0.1:$ECHO" >/dev/null 2>&1 &
  holder=$!
  sleep 3
  during=0
  for p in $(pgrep -g "${PID[$n]}"); do r=$(rss_kib "$p" 2>/dev/null || true); during=$((during + ${r:-0})); done
  wait "$holder" || true
  KIB[$n]=$(python3 -c "print(f'{($during - $before) / $HOLD:.1f}')")
  echo "$n: $before KiB before, $during KiB with $HOLD tunnels" >&2
done

ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b>0 else 'n/a')"; }
echo "Proxies, medians of $ROUNDS interleaved runs of ${SECS} s ($(nproc) cores, $(date -u +%F)); client side \`sockit relay --proxy\` for all:"
echo
echo "| proxy | iperf3 through it (Gbit/s) | conn/s through it | KiB per idle tunnel | sockit / it: throughput, conn/s |"
echo "| --- | ---: | ---: | ---: | --- |"
for n in "${NAMES[@]}"; do
  case $n in sockit-socks5|microsocks) me=sockit-socks5 ;; *) me=sockit-http ;; esac
  echo "| $n | ${GBPS[$n]} | ${CONNS[$n]} | ${KIB[$n]} | $(ratio "${GBPS[$me]}" "${GBPS[$n]}"), $(ratio "${CONNS[$me]}" "${CONNS[$n]}") |"
done
