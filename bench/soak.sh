#!/usr/bin/env bash
# Soak: one set of servers under mixed load for MINUTES, watching their memory and descriptors.
#
# Servers: `serve` (echo over tcp, udp without the UDP rate limit, and ws; socks5), `chat
# --rate 0` (tcp and ws), `relay` in front of the echo, `listen -k --max-conns 64 --exec cat`.
# Load, round after round until the time is up, each piece bounded in count and time: echo rr
# over tcp, udp and WebSocket, chat fan-out to tcp and WebSocket members, relay streams, exec
# churn (a program per connection), proxy tunnels, and clients that reset their connections
# (RST) mid-conversation or mid-upgrade. After each round every server's RSS and open descriptors are sampled; the
# run fails if, after the warm-up (the first fifth), either grows past what warm-up saw (RSS by
# more than 50% + 8 MiB, descriptors by more than 20). Loopback only; only the process groups
# started here are stopped.
#
# Usage: bench/soak.sh [MINUTES]      (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-30}
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
source bench/lib.sh
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

ECHO=$(free_port); SOCKS=$(free_port); UDP=$(free_port); WS=$(free_port)
bg "$SOCKIT" serve -q --udp-rate 0 "echo=tcp://127.0.0.1:$ECHO" "echo=udp://127.0.0.1:$UDP" "socks5=tcp://127.0.0.1:$SOCKS" "echo=ws://127.0.0.1:$WS/"
wait_tcp "$ECHO"; wait_tcp "$WS"; SERVE=${STARTED[-1]}
CHAT=$(free_port); CHATWS=$(free_port)
bg "$SOCKIT" chat -q --rate 0 "tcp://127.0.0.1:$CHAT" "ws://127.0.0.1:$CHATWS/"; wait_tcp "$CHAT"; wait_tcp "$CHATWS"; CHATP=${STARTED[-1]}
RELAY=$(free_port); bg "$SOCKIT" relay -q "tcp://127.0.0.1:$RELAY" "tcp://127.0.0.1:$ECHO"; wait_tcp "$RELAY"; RELAYP=${STARTED[-1]}
# A program per connection is bounded as a real deployment would bound it: a bare connect
# storm arrives faster than programs start (see the README), the excess is refused.
EXEC=$(free_port); bg "$SOCKIT" listen -q -k --max-conns 64 --exec cat "tcp://127.0.0.1:$EXEC"; wait_tcp "$EXEC"; EXECP=${STARTED[-1]}
NAMES=(serve chat relay exec)
declare -A PID=([serve]=$SERVE [chat]=$CHATP [relay]=$RELAYP [exec]=$EXECP)

resets() { # PORT: 50 clients that send a little and reset
  python3 - "$1" <<'PY'
import socket, struct, sys
for _ in range(50):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
        s.sendall(b"half a line that never ends")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass
PY
}

b() { "$SOCKIT" bench -q "$@" >/dev/null 2>&1 || echo "  load step failed: bench $*" >&2; }
end=$(( $(date +%s) + MINUTES * 60 ))
warm_end=$(( $(date +%s) + MINUTES * 12 ))
declare -A WARM_RSS WARM_FD LAST_RSS LAST_FD
round=0
echo "minute  $(for n in "${NAMES[@]}"; do printf '%-22s' "$n (KiB, fds)"; done)"
while [ "$(date +%s)" -lt "$end" ]; do
  round=$((round + 1))
  b --mode rr -c 10 --duration 4 "tcp://127.0.0.1:$ECHO"
  b --mode rr -c 4 --duration 2 "udp://127.0.0.1:$UDP"
  b --mode fanout --conns 20 --count 500 --duration 20 "tcp://127.0.0.1:$CHAT"
  b --mode rr -c 4 --duration 2 "ws://127.0.0.1:$WS/"
  b --mode fanout --conns 20 --count 500 --duration 20 "ws://127.0.0.1:$CHATWS/"
  b --mode stream --duration 2 "tcp://127.0.0.1:$RELAY"
  b --mode connect -c 2 --duration 2 "tcp://127.0.0.1:$EXEC"
  b --mode rr -c 4 --duration 2 --proxy "socks5://127.0.0.1:$SOCKS" "tcp://127.0.0.1:$ECHO"
  for p in "$ECHO" "$RELAY" "$CHAT" "$EXEC" "$WS" "$CHATWS"; do resets "$p"; done
  sleep 2 # let closed connections and ended programs be released
  line=$(python3 -c "import time; print(f'{($MINUTES*60 - ($end - $(date +%s)))/60:6.1f}')")
  for n in "${NAMES[@]}"; do
    r=$(rss_kib "${PID[$n]}"); f=$(fds "${PID[$n]}")
    LAST_RSS[$n]=$r; LAST_FD[$n]=$f
    if [ "$(date +%s)" -lt "$warm_end" ] || [ -z "${WARM_RSS[$n]:-}" ]; then
      [ "$r" -gt "${WARM_RSS[$n]:-0}" ] && WARM_RSS[$n]=$r
      [ "$f" -gt "${WARM_FD[$n]:-0}" ] && WARM_FD[$n]=$f
    fi
    line+=$(printf '  %-20s' "$r, $f")
  done
  echo "$line"
done
status=0
echo
for n in "${NAMES[@]}"; do
  limit=$(( WARM_RSS[$n] * 3 / 2 + 8192 )); flimit=$(( WARM_FD[$n] + 20 ))
  verdict=ok
  if [ "${LAST_RSS[$n]}" -gt "$limit" ] || [ "${LAST_FD[$n]}" -gt "$flimit" ]; then verdict=GREW; status=1; fi
  echo "$n: warm-up peak ${WARM_RSS[$n]} KiB / ${WARM_FD[$n]} fds, at the end ${LAST_RSS[$n]} KiB / ${LAST_FD[$n]} fds: $verdict"
done
echo "$round rounds in $MINUTES minutes"
exit "$status"
