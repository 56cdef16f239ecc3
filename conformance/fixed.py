"""Runs a client script with a fixed clock, pid, host name and random bits,
so that what the Python client writes is the same on every machine and
every time: how the client fixtures here were made, and how the client's
tests make them again to compare bytes.

    python3 conformance/fixed.py CLIENT_DIR SCRIPT

CLIENT_DIR holds the `labmate` package (python/ in this repository). The
clock (time.time and time.time_ns) starts at 1800000000.0 and moves 0.25 s
each time it is read; the pid is 4242, the host `gpu-01`, and the ids'
random bits count on from 1. The client's writer flushes only when the
script makes it (init, flush, finish), never on its interval, so that which
points share a batch does not depend on how fast the machine is.
"""

import itertools
import os
import runpy
import secrets
import socket
import sys
import time

_clock = itertools.count()
_spans = itertools.count()
_bits = itertools.count(1)

time.time = lambda: 1800000000.0 + next(_clock) * 0.25
time.time_ns = lambda: 1800000000_000000000 + next(_clock) * 250_000000
time.perf_counter = lambda: next(_spans) * 0.125
os.getpid = lambda: 4242
secrets.randbits = lambda k: next(_bits) * 7919 % (1 << k)
socket.gethostname = lambda: "gpu-01"

if __name__ == "__main__":
    client_dir, script = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.abspath(client_dir))
    import labmate._writer

    labmate._writer._DEFAULT_FLUSH_INTERVAL = 365 * 24 * 3600.0
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")
