#!/usr/bin/env python3
"""Anonymous memory (Pss_Anon, KiB) of a process and its children, for per-client memory.

RSS of a forking server's parent misses the process each client gets (xinetd, socat); the
whole tree counts those, with copy-on-write pages shared after fork split among them. Only
anonymous memory (heap, stacks) counts: code pages come in once on first use (and are shared
with a load generator running the same binary), they are not a cost per client.
Usage: bench/pss_tree.py PID
"""
import glob
import sys


def pss(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("Pss_Anon:"))
    except (OSError, StopIteration):
        return 0


def children(pid):
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


root = int(sys.argv[1])
print(pss(root) + sum(pss(c) for c in children(root)))
