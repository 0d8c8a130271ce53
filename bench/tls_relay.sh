#!/usr/bin/env bash
# TLS relay throughput: a plain client -> origination relay (tcp -> tls) -> termination relay
# (tls -> tcp) -> discard server, so every byte is encrypted once and decrypted once.
# `sockit bench --mode stream --sink` drives it for SECS seconds; medians of ROUNDS. The
# same chain is built with sockit relay and with socat (OPENSSL / OPENSSL-LISTEN). Uses the
# committed test certificate (tests/certs); loopback only; we stop only what we started.
#
# Usage: bench/tls_relay.sh [ROUNDS] [SECS]      (defaults 3 and 4)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECS=${2:-4}
command -v socat >/dev/null || apt-get install -y socat >/dev/null
cargo build --release -q -p sockit
SOCKIT=$PWD/target/release/sockit
CERT=$PWD/tests/certs/localhost.pem
KEY=$PWD/tests/certs/localhost.key
source bench/lib.sh

SINK=$(free_port)
bg "$SOCKIT" serve -q "discard=tcp://127.0.0.1:$SINK"
wait_tcp "$SINK"

declare -A FRONT
for impl in sockit socat; do
  t=$(free_port); o=$(free_port)
  case $impl in
    sockit)
      bg "$SOCKIT" relay -q --cert "$CERT" --key "$KEY" "tls://127.0.0.1:$t" "tcp://127.0.0.1:$SINK"
      wait_tcp "$t"
      bg "$SOCKIT" relay -q --ca "$PWD/tests/certs/ca.pem" "tcp://127.0.0.1:$o" "tls://localhost:$t" ;;
    socat)
      bg socat "OPENSSL-LISTEN:$t,bind=127.0.0.1,fork,reuseaddr,cert=$CERT,key=$KEY,verify=0" "TCP:127.0.0.1:$SINK"
      wait_tcp "$t"
      bg socat "TCP-LISTEN:$o,bind=127.0.0.1,fork,reuseaddr" "OPENSSL:127.0.0.1:$t,cafile=$PWD/tests/certs/ca.pem,commonname=localhost" ;;
  esac
  wait_tcp "$o"
  FRONT[$impl]=$o
done

direct=()
declare -A RES
for _ in $(seq 1 "$ROUNDS"); do
  direct+=("$("$SOCKIT" bench -q --json --mode stream --sink -d "$SECS" "tcp://127.0.0.1:$SINK" | python3 -c 'import json,sys; print(json.load(sys.stdin)["mib_per_s"])')")
  for impl in sockit socat; do
    r=$("$SOCKIT" bench -q --json --mode stream --sink -d "$SECS" "tcp://127.0.0.1:${FRONT[$impl]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["mib_per_s"])')
    RES[$impl]="${RES[$impl]:-} $r"
  done
done
d=$(median 0 "${direct[@]}")
s=$(median 0 ${RES[sockit]})
o=$(median 0 ${RES[socat]})
echo "| chain (tcp -> tls -> tcp, 1 stream) | MiB/s (median of $ROUNDS) | sockit / it |"
echo "| --- | ---: | ---: |"
echo "| no relay, plain TCP (ceiling) | $d | $(python3 -c "print(f'{$s/$d:.2f}x')") |"
echo "| sockit relay (origination + termination) | $s | 1.00x |"
echo "| socat OPENSSL + OPENSSL-LISTEN | $o | $(python3 -c "print(f'{$s/$o:.2f}x')") |"
