"""The cost of labmate.span: a `with labmate.span(...)` block around nothing,
1,000,000 times, against the same loop without it. Prints the overhead per
span in microseconds. Run: PYTHONPATH=python python3 python/bench/bench_span.py"""

import os
import sys
import tempfile
import time

os.environ["LABMATE_DIR"] = os.path.join(tempfile.mkdtemp(prefix="labmate-span-"), ".labmate")
import labmate  # noqa: E402

N = 1_000_000


def loop_bare():
    t = time.perf_counter()
    for _ in range(N):
        pass
    return time.perf_counter() - t


def loop_span():
    s = labmate.span("forward")
    t = time.perf_counter()
    for _ in range(N):
        with s:
            pass
    return time.perf_counter() - t


def loop_span_lookup():
    t = time.perf_counter()
    for _ in range(N):
        with labmate.span("forward"):
            pass
    return time.perf_counter() - t


labmate.init(name="span-bench")
bare = min(loop_bare() for _ in range(3))
held = min(loop_span() for _ in range(3))
looked_up = min(loop_span_lookup() for _ in range(3))
labmate.log({"x": 1.0})
labmate.finish()
print("| `with labmate.span(name):` (looked up each time) | %.2f µs per span | < 2 µs |" % ((looked_up - bare) / N * 1e6))
print("| `with s:` (span object kept) | %.2f µs per span | < 2 µs |" % ((held - bare) / N * 1e6))
print("python", sys.version.split()[0])
