#!/usr/bin/env bash
# The comparison suite: the same `sockit bench` workloads against sockit and its peers
# (socat, ncat, xinetd's built-in echo, a minimal tokio echo in bench/tokio-echo, and for
# bulk transfer OpenBSD nc and iperf3), on loopback, medians of ROUNDS runs, as Markdown
# tables with ratios to sockit, plus bench/results.csv and the chart bench/chart.svg.
# It installs missing peers with apt-get, starts each contender on a free port in its own
# process group, and stops only those groups. About 7 minutes on 2 cores with 3 rounds, 12 with 5.
#
# Usage: bench/compare.sh [ROUNDS] [SECONDS_PER_RUN]     (defaults 3 and 2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-2}
OUT=bench/results.md
CSV=bench/results.csv
ulimit -n 8192

for p in socat:socat ncat:ncat nc:netcat-openbsd iperf3:iperf3 xinetd:xinetd; do
  command -v "${p%%:*}" >/dev/null || apt-get install -y "${p#*:}" >/dev/null
done
cargo build --release -q -p sockit -p tokio-echo
SOCKIT=$PWD/target/release/sockit
TOKIO=$PWD/target/release/tokio-echo
source bench/lib.sh
TMP=$(mktemp -d)
trap 'cleanup; rm -rf "$TMP"' EXIT

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); k=sys.argv[1].split("."); v=d
for p in k: v=v[p] if v is not None else 0
print(v if v is not None else 0)' "$1"; }

# start NAME PORT: starts an echo contender (TCP and UDP where it has both); sets PID.
start() {
  local name=$1 port=$2
  case $name in
    sockit) setsid "$SOCKIT" serve -q --udp-rate 0 "echo=tcp://127.0.0.1:$port" "echo=udp://127.0.0.1:$port" </dev/null & ;;
    tokio)  setsid "$TOKIO" "$port" </dev/null & ;;
    socat)  setsid sh -c "socat TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr PIPE & socat UDP-RECVFROM:$port,bind=127.0.0.1,fork PIPE & wait" </dev/null & ;;
    ncat)   setsid ncat -l -k -m 2000 127.0.0.1 "$port" --exec /bin/cat </dev/null & ;;
    xinetd)
      xinetd_echo_conf "$TMP/xinetd.conf" "$port" udp
      setsid xinetd -dontfork -filelog "$TMP/xinetd.log" -f "$TMP/xinetd.conf" -pidfile "$TMP/xinetd.pid" </dev/null >/dev/null 2>&1 & ;;
  esac
  PID=$!
  STARTED+=("$PID")
  wait_tcp "$port"
}
stop() { kill -- "-$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

bench() { "$SOCKIT" bench -q --json --duration "$SECS" "$@" 2>/dev/null || true; }

ECHO=(sockit tokio xinetd socat ncat)
: >"$OUT"
echo "workload,contender,value,unit" >"$CSV"
say() { echo "$*" | tee -a "$OUT"; }

say "# sockit compared ($(date -u +%F), $(nproc) cores, loopback, median of $ROUNDS runs of ${SECS} s)"
say ""

# --- echo request/response at 1, 10, 100 connections, and echo stream ---
declare -A RR P99 STREAM CONNS
for c in 1 10 100; do
  for n in "${ECHO[@]}"; do
    vals=(); p99s=()
    for _ in $(seq 1 "$ROUNDS"); do
      port=$(free_port); start "$n" "$port"
      j=$(bench --mode rr -c "$c" "tcp://127.0.0.1:$port")
      vals+=("$(echo "$j" | field ops_per_s)"); p99s+=("$(echo "$j" | field latency.p99_us)")
      stop "$PID"
    done
    RR[$n,$c]=$(median 0 "${vals[@]}"); P99[$n,$c]=$(median 0 "${p99s[@]}")
    echo "rr c=$c $n: ${RR[$n,$c]} ops/s" >&2
    echo "echo rr $c conns,$n,${RR[$n,$c]},requests/s" >>"$CSV"
  done
done
for n in "${ECHO[@]}"; do
  vals=(); cvals=()
  for _ in $(seq 1 "$ROUNDS"); do
    port=$(free_port); start "$n" "$port"
    vals+=("$(bench --mode stream -c 1 "tcp://127.0.0.1:$port" | field mib_per_s)")
    cvals+=("$(bench --mode connect -c 2 "tcp://127.0.0.1:$port" | field ops_per_s)")
    stop "$PID"
  done
  STREAM[$n]=$(median 0 "${vals[@]}"); CONNS[$n]=$(median 0 "${cvals[@]}")
  echo "stream/connect $n: ${STREAM[$n]} MiB/s ${CONNS[$n]} conn/s" >&2
  echo "echo stream,$n,${STREAM[$n]},MiB/s" >>"$CSV"
  echo "connection rate,$n,${CONNS[$n]},connections/s" >>"$CSV"
done
ratio() { python3 -c "a,b=float('$1'),float('$2'); print(f'{a/b:.2f}x' if b>0 else 'n/a')"; }
say "## TCP echo (sockit serve echo against the same service elsewhere)"
say ""
say "| contender | rr 1 conn (req/s) | rr 10 | rr 100 | p99 at 100 (µs) | stream (MiB/s) | connections/s | sockit / it at rr 100 |"
say "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for n in "${ECHO[@]}"; do
  say "| $n | ${RR[$n,1]} | ${RR[$n,10]} | ${RR[$n,100]} | ${P99[$n,100]} | ${STREAM[$n]} | ${CONNS[$n]} | $(ratio "${RR[sockit,100]}" "${RR[$n,100]}") |"
done
say ""

# --- UDP echo request/response ---
UDP=(sockit tokio xinetd socat)
declare -A URR
for c in 1 10; do
  for n in "${UDP[@]}"; do
    vals=()
    for _ in $(seq 1 "$ROUNDS"); do
      port=$(free_port); start "$n" "$port"
      vals+=("$(bench --mode rr -c "$c" --timeout 0.2 "udp://127.0.0.1:$port" | field ops_per_s)")
      stop "$PID"
    done
    URR[$n,$c]=$(median 0 "${vals[@]}")
    echo "udp rr c=$c $n: ${URR[$n,$c]}" >&2
    echo "udp echo rr $c conns,$n,${URR[$n,$c]},requests/s" >>"$CSV"
  done
done
say "## UDP echo request/response (req/s)"
say ""
say "| contender | 1 socket | 10 sockets | sockit / it at 10 |"
say "| --- | ---: | ---: | ---: |"
for n in "${UDP[@]}"; do say "| $n | ${URR[$n,1]} | ${URR[$n,10]} | $(ratio "${URR[sockit,10]}" "${URR[$n,10]}") |"; done
say ""

# --- memory of 1,000 idle connections ---
say "## Memory with 1,000 idle connections (anonymous memory of the server and its child processes, bench/pss_tree.py)"
say ""
say "| contender | KiB per connection | connections held |"
say "| --- | ---: | ---: |"
for n in sockit tokio xinetd; do
  port=$(free_port); start "$n" "$port"
  srv=$PID; [ "$n" = xinetd ] && srv=$(cat "$TMP/xinetd.pid" 2>/dev/null || echo "$PID")
  before=$(bench/pss_tree.py "$srv")
  "$SOCKIT" bench -q --mode connect --hold 1000 --duration 25 "tcp://127.0.0.1:$port" >/dev/null 2>&1 &
  b=$!
  # xinetd takes about 80 connections a second: wait up to 20 s, then count what is there.
  for _ in $(seq 1 1000); do
    [ "$(ss -tnH state established "dport = :$port" | wc -l)" -ge 1000 ] && break; sleep 0.02
  done
  sleep 0.5 # let the server finish accepting; a measurement pause, not a synchronisation
  held=$(ss -tnH state established "dport = :$port" | wc -l)
  after=$(bench/pss_tree.py "$srv")
  kill "$b" 2>/dev/null || true; wait "$b" 2>/dev/null || true
  stop "$PID"
  per=$(python3 -c "print(f'{($after-$before)/max($held,1):.1f}')")
  say "| $n | $per | $held |"
  echo "KiB per idle connection,$n,$per,KiB" >>"$CSV"
done
say ""

# --- relay throughput: a discard server behind each relay, measured with verified writes ---
say "## Relay throughput (stream, 64 KiB writes into a discard server behind the relay)"
say ""
say "| relay | MiB/s | sockit / it |"
say "| --- | ---: | ---: |"
declare -A REL
for n in direct sockit socat ncat; do
  vals=()
  for _ in $(seq 1 "$ROUNDS"); do
    dport=$(free_port)
    setsid "$SOCKIT" serve -q "discard=tcp://127.0.0.1:$dport" </dev/null & D=$!; STARTED+=("$D")
    wait_tcp "$dport"
    rport=$(free_port)
    case $n in
      direct) R=""; rport=$dport ;;
      sockit) setsid "$SOCKIT" relay -q "tcp://127.0.0.1:$rport" "tcp://127.0.0.1:$dport" </dev/null & R=$! ;;
      socat)  setsid socat "TCP-LISTEN:$rport,bind=127.0.0.1,fork,reuseaddr" "TCP:127.0.0.1:$dport" </dev/null & R=$! ;;
      ncat)   setsid ncat -l -k 127.0.0.1 "$rport" --sh-exec "ncat 127.0.0.1 $dport" </dev/null & R=$! ;;
    esac
    [ -n "$R" ] && { STARTED+=("$R"); wait_tcp "$rport"; }
    vals+=("$(bench --mode stream --sink -c 1 "tcp://127.0.0.1:$rport" | field mib_per_s)")
    [ -n "$R" ] && stop "$R"
    stop "$D"
  done
  REL[$n]=$(median 0 "${vals[@]}")
  echo "relay $n: ${REL[$n]} MiB/s" >&2
  echo "relay throughput,$n,${REL[$n]},MiB/s" >>"$CSV"
done
for n in direct sockit socat ncat; do say "| $n | ${REL[$n]} | $(ratio "${REL[sockit]}" "${REL[$n]}") |"; done
say ""

# --- relay throughput with iperf3 (1 and 4 streams), direct as the ceiling ---
say "## Relay throughput with iperf3"
say ""
bench/relay.sh "$ROUNDS" 3 2>/dev/null | tee -a "$OUT" | grep '^| [a-z]' | grep -v '^| relay' | \
  awk -F'|' '{gsub(/ /,"",$2); gsub(/ /,"",$3); print "relay iperf3 1 stream," $2 "," $3 ",Gbit/s"}' >>"$CSV"
say ""

# --- bulk transfer connect -> listen ---
say "## Bulk transfer, connect -> listen"
say ""
bench/bulk.sh "$ROUNDS" 1G 2>/dev/null | tail -n +2 | tee -a "$OUT" | grep '^| [a-z]' | grep -v '^| tool' | \
  awk -F'|' '{gsub(/ /,"",$2); gsub(/ /,"",$3); print "bulk 1 GiB," $2 "," $3 ",MiB/s"}' >>"$CSV"
say ""
say "Chat fan-out and chat memory: bench/chat.sh (bench/chat-results.md)."

cargo run --release -q -p bench-chart -- "$CSV" bench/chart.svg && echo "chart: bench/chart.svg" >&2
