#!/usr/bin/env bash
# Relay throughput, tcp -> tcp: iperf3 through each relay (1 and 4 streams) against iperf3
# direct as the ceiling: sockit relay (splice path), sockit relay forced onto its buffered pump
# (--idle-timeout), socat (TCP-LISTEN,fork TCP:) and ncat (--sh-exec "ncat ..."). Medians of
# ROUNDS runs of SECS seconds; loopback only; we stop only the process groups we started.
#
# Usage: bench/relay.sh [ROUNDS] [SECS]      (defaults 3 and 3)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-3}
for p in socat:socat ncat:ncat iperf3:iperf3; do
  command -v "${p%%:*}" >/dev/null || apt-get install -y "${p#*:}" >/dev/null
done
cargo build --release -q -p sockit
SOCKIT=${SOCKIT:-$PWD/target/release/sockit}  # SOCKIT=path compares another build (before/after)
source bench/lib.sh

IPORT=$(free_port)
setsid iperf3 -s -B 127.0.0.1 -p "$IPORT" </dev/null >/dev/null 2>&1 & STARTED+=($!)
wait_tcp "$IPORT"

NAMES=(direct sockit sockit-pump socat ncat)
declare -A PORT PID
for n in "${NAMES[@]}"; do
  p=$(free_port)
  case $n in
    direct) p=$IPORT ;;
    sockit) setsid "$SOCKIT" relay -q "tcp://127.0.0.1:$p" "tcp://127.0.0.1:$IPORT" </dev/null & STARTED+=($!) ;;
    sockit-pump) setsid "$SOCKIT" relay -q --idle-timeout 3600 "tcp://127.0.0.1:$p" "tcp://127.0.0.1:$IPORT" </dev/null & STARTED+=($!) ;;
    socat) setsid socat "TCP-LISTEN:$p,bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$IPORT" </dev/null 2>/dev/null & STARTED+=($!) ;;
    ncat) setsid ncat -l -k 127.0.0.1 "$p" --sh-exec "ncat 127.0.0.1 $IPORT" </dev/null 2>/dev/null & STARTED+=($!) ;;
  esac
  wait_tcp "$p"
  PORT[$n]=$p
  [ "$n" = direct ] || PID[$n]=${STARTED[-1]}
done

# CPU ticks of a relay and of the children it has reaped (socat and ncat fork per client).
tree_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
declare -A R1 R4 C1
for streams in 1 4; do
  declare -A V=() C=()
  for _ in $(seq 1 "$ROUNDS"); do
    for n in "${NAMES[@]}"; do
      t0=$(tree_ticks "${PID[$n]:-0}")
      read -r g bytes < <(iperf3 -c 127.0.0.1 -p "${PORT[$n]}" -t "$SECS" -P "$streams" -J 2>/dev/null | \
          python3 -c 'import json,sys; e=json.load(sys.stdin)["end"]["sum_received"]; print(e["bits_per_second"]/1e9, e["bytes"])' 2>/dev/null || echo 0 0)
      sleep 0.3  # a forking relay reaps its child after the client has gone
      t1=$(tree_ticks "${PID[$n]:-0}")
      V[$n]="${V[$n]:-} $g"
      [ "$bytes" -gt 0 ] && C[$n]="${C[$n]:-} $(python3 -c "print(($t1 - $t0) * 1000 / $(getconf CLK_TCK) / ($bytes / 1e9))")"
      echo "streams=$streams $n: $g Gbit/s, relay CPU $((t1 - t0)) ticks" >&2
    done
  done
  for n in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    m=$(median 2 ${V[$n]})
    if [ "$streams" = 1 ]; then
      R1[$n]=$m
      # shellcheck disable=SC2086
      if [ "$n" = direct ] || [ -z "${C[$n]:-}" ]; then C1[$n]="-"; else C1[$n]=$(median 0 ${C[$n]}); fi
    else R4[$n]=$m; fi
  done
done

ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}' if b>0 else 'n/a')"; }
echo "Relay tcp -> tcp, iperf3 through the relay, Gbit/s (median of $ROUNDS runs of ${SECS} s, $(nproc) cores):"
echo
echo "| relay | 1 stream | 4 streams | share of direct (1 stream) | sockit / it (1 stream) | relay CPU ms per GB (1 stream) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for n in "${NAMES[@]}"; do
  echo "| $n | ${R1[$n]} | ${R4[$n]} | $(ratio "${R1[$n]}" "${R1[direct]}") | $(ratio "${R1[sockit]}" "${R1[$n]}")x | ${C1[$n]} |"
done
