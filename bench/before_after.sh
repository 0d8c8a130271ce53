#!/usr/bin/env bash
# One build of sockit against another, as servers, in the same run: echo rr (1, 10, 100
# connections), echo stream, connection rate, UDP echo rr, and relay throughput (into a
# discard server, and with iperf3). The load generator is always this checkout's build, so
# only the server differs. Medians of ROUNDS runs, the two builds interleaved; loopback only;
# only the process groups started here are stopped.
#
# Usage: bench/before_after.sh OLD_SOCKIT [ROUNDS] [SECS]     (defaults 5 and 2)
#   e.g. git worktree add /tmp/old <commit> && (cd /tmp/old && cargo build --release -p sockit)
#        bench/before_after.sh /tmp/old/target/release/sockit
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: bench/before_after.sh OLD_SOCKIT [ROUNDS] [SECS]}
ROUNDS=${2:-5}
SECS=${3:-2}
command -v iperf3 >/dev/null || apt-get install -y iperf3 >/dev/null
cargo build --release -q -p sockit
NEW=$PWD/target/release/sockit
source bench/lib.sh

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); v=d
for p in sys.argv[1].split("."): v=v[p] if v is not None else 0
print(v if v is not None else 0)' "$1"; }
gen() { "$NEW" bench -q --json --duration "$SECS" "$@" 2>/dev/null || echo '{}'; }
stop() { kill -- "-$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

declare -A V
add() { V[$1,$2]="${V[$1,$2]:-} $3"; }
WORK=("rr 1" "rr 10" "rr 100" "stream" "connect" "udp rr 10" "relay sink" "relay iperf3")
for _ in $(seq 1 "$ROUNDS"); do
  for who in before after; do
    bin=$OLD; [ "$who" = after ] && bin=$NEW
    port=$(free_port)
    setsid "$bin" serve -q --udp-rate 0 "echo=tcp://127.0.0.1:$port" "echo=udp://127.0.0.1:$port" </dev/null & S=$!; STARTED+=("$S")
    wait_tcp "$port"
    for c in 1 10 100; do add "rr $c" $who "$(gen --mode rr -c $c "tcp://127.0.0.1:$port" | field ops_per_s)"; done
    add stream $who "$(gen --mode stream -c 1 "tcp://127.0.0.1:$port" | field mib_per_s)"
    add connect $who "$(gen --mode connect -c 2 "tcp://127.0.0.1:$port" | field ops_per_s)"
    add "udp rr 10" $who "$(gen --mode rr -c 10 --timeout 0.2 "udp://127.0.0.1:$port" | field ops_per_s)"
    stop "$S"
    dport=$(free_port)
    setsid "$NEW" serve -q "discard=tcp://127.0.0.1:$dport" </dev/null & D=$!; STARTED+=("$D")
    wait_tcp "$dport"
    rport=$(free_port)
    setsid "$bin" relay -q "tcp://127.0.0.1:$rport" "tcp://127.0.0.1:$dport" </dev/null & R=$!; STARTED+=("$R")
    wait_tcp "$rport"
    add "relay sink" $who "$(gen --mode stream --sink -c 1 "tcp://127.0.0.1:$rport" | field mib_per_s)"
    stop "$R"; stop "$D"
    iport=$(free_port)
    setsid iperf3 -s -B 127.0.0.1 -p "$iport" </dev/null >/dev/null 2>&1 & I=$!; STARTED+=("$I")
    wait_tcp "$iport"
    rport=$(free_port)
    setsid "$bin" relay -q "tcp://127.0.0.1:$rport" "tcp://127.0.0.1:$iport" </dev/null & R=$!; STARTED+=("$R")
    wait_tcp "$rport"
    g=$(iperf3 -c 127.0.0.1 -p "$rport" -t "$SECS" -J 2>/dev/null | \
        python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)' 2>/dev/null || echo 0)
    add "relay iperf3" $who "$g"
    stop "$R"; stop "$I"
    echo "round done: $who" >&2
  done
done
echo "Servers: before = $OLD, after = this checkout; load generator: this checkout's sockit bench."
echo "Medians of $ROUNDS interleaved rounds of ${SECS} s, $(nproc) cores, loopback."
echo
echo "| workload | before | after | after / before |"
echo "| --- | ---: | ---: | ---: |"
for w in "${WORK[@]}"; do
  # shellcheck disable=SC2086
  b=$(median 2 ${V[$w,before]}); a=$(median 2 ${V[$w,after]})
  r=$(python3 -c "a,b=float('$a'),float('$b'); print(f'{a/b:.2f}' if b>0 else 'n/a')")
  echo "| $w | $b | $a | $r |"
done
