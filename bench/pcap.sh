#!/usr/bin/env bash
# What --pcap costs: a 1 GiB connect -> listen transfer over loopback with and without
# `--pcap /dev/null` on the connect side, the CPU time (user + system) of both processes,
# medians of ROUNDS alternating rounds. Without --pcap the transfer takes the zero-copy path;
# with it the buffered pump and a packet per 64 KiB.
#
# Usage: bench/pcap.sh [ROUNDS]     (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
cargo build --release -q -p sockit
S=$PWD/target/release/sockit
source bench/lib.sh
DATA=$(mktemp); trap 'rm -f "$DATA"' EXIT
head -c 1073741824 /dev/zero > "$DATA"
cpu() { # the CPU seconds of one transfer, both sides
  local port; port=$(free_port)
  /usr/bin/time -f "%U %S" -o /tmp/sockit-pcap-l.$$ "$S" listen -q "tcp://127.0.0.1:$port" >/dev/null &
  local L=$!; wait_tcp "$port"
  /usr/bin/time -f "%U %S" -o /tmp/sockit-pcap-c.$$ "$S" connect "$@" "tcp://127.0.0.1:$port" < "$DATA"
  wait "$L"
  cat /tmp/sockit-pcap-l.$$ /tmp/sockit-pcap-c.$$ | awk '{t += $1 + $2} END {print t}'
  rm -f /tmp/sockit-pcap-l.$$ /tmp/sockit-pcap-c.$$
}
plain=(); buffered=(); pcap=()
for _ in $(seq 1 "$ROUNDS"); do
  plain+=("$(cpu)")
  buffered+=("$(cpu --idle-timeout 3600)")
  pcap+=("$(cpu --pcap /dev/null)")
done
p=$(median 2 "${plain[@]}"); b=$(median 2 "${buffered[@]}"); c=$(median 2 "${pcap[@]}")
ratio() { python3 -c "print(f'{float(\"$1\")/float(\"$2\"):.2f}x')"; }
echo "| 1 GiB connect -> listen (median of $ROUNDS) | CPU s, both sides | to the plain run |"
echo "| --- | ---: | ---: |"
echo "| plain (zero-copy path) | $p | 1.00x |"
echo "| buffered pump, no capture (--idle-timeout 3600) | $b | $(ratio "$b" "$p") |"
echo "| --pcap /dev/null | $c | $(ratio "$c" "$p") |"
