"""Drives `sockit connect --raw ENDPOINT` on a pseudo-terminal of its own (its controlling
terminal, as in a real terminal window), for sockit's tests.

    raw_tty.py SOCKIT ENDPOINT MODE

MODE: `escape` types `ab`, Ctrl-C, Ctrl-Z, Tab, `c`, then Ctrl-] (which leaves);
`term` (`hup`) types `ab` and Ctrl-C, then sends SIGTERM (SIGHUP); `peer` and `reset` type
`ab` and Ctrl-C and wait for the peer to close or reset the connection. Prints `raw` (the terminal was in raw mode meanwhile), `restored` (its
modes after are the modes before), and `exit N`.
"""

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time


def main():
    sockit, endpoint, mode = sys.argv[1:4]
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)

    def controlling():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(
        [sockit, "connect", "--raw", endpoint],
        stdin=slave, stdout=slave, stderr=slave,
        start_new_session=True, preexec_fn=controlling,
    )
    seen = b""
    end = time.time() + 10
    while b"Ctrl-] leaves" not in seen and time.time() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            seen += os.read(master, 4096)
    during = termios.tcgetattr(slave)
    print("raw" if not during[3] & termios.ICANON and not during[3] & termios.ECHO else "cooked", flush=True)
    if mode == "escape":
        os.write(master, b"ab\x03\x1a\tc")
        time.sleep(0.3)
        os.write(master, b"\x1d")
    else:
        os.write(master, b"ab\x03")
        if mode in ("term", "hup"):
            time.sleep(0.5)
            p.send_signal(signal.SIGTERM if mode == "term" else signal.SIGHUP)
    rc = p.wait(15)
    after = termios.tcgetattr(slave)
    print("restored" if after == before else f"not restored: {before} -> {after}", flush=True)
    print("exit", rc, flush=True)


if __name__ == "__main__":
    main()
