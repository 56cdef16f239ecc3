"""Benchmark the wandb stand-in's read API: ``Api().run(id).history(keys=
["loss"])`` on a run of 1,000,000 points, and ``scan_history`` over all of
them, through the ``labmate`` binary (LABMATE_BIN, else on PATH).

    LABMATE_BIN=target/release/labmate python3 python/bench/bench_api.py [--points 1000000] [--repeat 5]

The run is written once by the Python client into a temporary lab; the
index is built by one `labmate runs` before the timings, as any earlier
command would have; each timing is a fresh Api() in this process.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # python/, this checkout's client


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    binary = os.environ.get("LABMATE_BIN", "labmate")
    with tempfile.TemporaryDirectory(prefix="labmate-bench-api-") as work:
        os.environ["LABMATE_DIR"] = os.path.join(work, ".labmate")
        subprocess.run([binary, "init"], cwd=work, check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, LABMATE_DIR=""))
        code = ("import labmate, math\nlabmate.init(name='big')\n"
                "for i in range(%d):\n    labmate.log({'loss': 1.0 / (i + 1) + (5.0 if i %% 99991 == 0 else 0.0)})\n"
                "labmate.finish()\n" % args.points)
        env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
        subprocess.run([sys.executable, "-c", code], cwd=work, check=True, env=env)
        start = time.perf_counter()
        subprocess.run([binary, "runs"], cwd=work, check=True, stdout=subprocess.DEVNULL)
        index_s = time.perf_counter() - start
        import labmate.wandb as wandb

        history, scans = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            rows = wandb.Api().run("big").history(keys=["loss"], pandas=False)
            history.append(time.perf_counter() - start)
        spikes = sum(1 for r in rows if r["loss"] > 4)
        start = time.perf_counter()
        count = sum(1 for _ in wandb.Api().run("big").scan_history(keys=["loss"]))
        scans.append(time.perf_counter() - start)
    print("run of %d points (index built in %.2f s by the first command)" % (args.points, index_s))
    print("| read | rows | median s | min s |")
    print("|---|---:|---:|---:|")
    print("| `Api().run(id).history(keys=[\"loss\"])` (500 samples) | %d (%d spikes kept of %d) | %.3f | %.3f |"
          % (len(rows), spikes, (args.points + 99990) // 99991, statistics.median(history), min(history)))
    print("| `scan_history(keys=[\"loss\"])`, every row | %d | %.3f | %.3f |" % (count, scans[0], scans[0]))


if __name__ == "__main__":
    main()
