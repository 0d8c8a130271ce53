# Runs a command with a pseudo-terminal as its stdin (a person at a keyboard who types
# nothing), and prints how it ended: "exit N", or "timeout" after 10 s.
import os, pty, subprocess, sys
master, slave = pty.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=slave)
os.close(slave)
try:
    rc = p.wait(timeout=10)
except subprocess.TimeoutExpired:
    p.kill()
    print("timeout", flush=True)
    sys.exit(1)
print("exit", rc, flush=True)
