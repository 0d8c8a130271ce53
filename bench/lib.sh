# Shared by the bench scripts: `source "$(dirname "$0")/lib.sh"` after `cd` to the repository.
# Every process a script starts goes into STARTED as its own process group (setsid), and
# only those groups are stopped at exit. Loopback only.

STARTED=()
cleanup() { for g in "${STARTED[@]}"; do kill -- "-$g" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a command in its own process group, quiet, and remembers it.
bg() { setsid "$@" </dev/null >/dev/null 2>&1 & STARTED+=($!); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Waits (5 s at most) until something listens on TCP port $1 on loopback.
wait_tcp() { for _ in $(seq 1 250); do ss -ltnH "sport = :$1" | grep -q . && return 0; sleep 0.02; done; echo "nothing listens on $1" >&2; return 1; }
# median DIGITS VALUES...: the median, with DIGITS decimals.
median() { python3 -c 'import sys,statistics; print(f"{statistics.median(float(x) for x in sys.argv[2:]):.{int(sys.argv[1])}f}")' "$@"; }
# Keeps one core busy with a spinning process (its own group, stopped at exit), for the
# loaded rounds (`--busy`): how a server does when it does not have the machine to itself.
busy_core() { bg bash -c 'while :; do :; done'; echo "one core kept busy by pid ${STARTED[-1]}" >&2; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# xinetd_echo_conf FILE PORT [udp]: a private xinetd config with the built-in TCP echo on
# 127.0.0.1:PORT (and the UDP one with "udp"); the system's xinetd is never touched.
xinetd_echo_conf() {
  cat >"$1" <<CONF
defaults
{
}
service echo
{
  type = INTERNAL UNLISTED
  id = echo-stream
  socket_type = stream
  protocol = tcp
  port = $2
  bind = 127.0.0.1
  wait = no
  user = root
  instances = UNLIMITED
  per_source = UNLIMITED
  cps = 100000 1
}
CONF
  [ "${3:-}" = udp ] && cat >>"$1" <<CONF
service echo
{
  type = INTERNAL UNLISTED
  id = echo-dgram
  socket_type = dgram
  protocol = udp
  port = $2
  bind = 127.0.0.1
  wait = yes
  user = root
}
CONF
  return 0
}
