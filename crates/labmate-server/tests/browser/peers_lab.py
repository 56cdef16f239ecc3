"""One run's `loss` series written for three dashboards: labmate, TensorBoard, Trackio.

    TRACKIO_DIR=OUT/trackio python peers_lab.py OUT N

writes N steps (0 .. N-1), one point per step, the same values for every
tool: a noisy decaying curve from a seeded generator, with one spike of 10x
at step N // 2 (so that a dashboard's sampling can be seen to keep it or
lose it). Into OUT/labmate (a lab, `.labmate` inside), OUT/tb (TensorBoard
event files through tensorboardX) and TRACKIO_DIR (project "bench", run
"run"). Writes OUT/peers.json (and prints it): the labmate run id, the
spike, and how long each tool took to write the series; peers.mjs reads it. Needs labmate's Python client (from the
repository's `python/`), tensorboardX and trackio.
"""

import json
import math
import os
import random
import sys
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "python"))


def series(n):
    rng = random.Random(20240611)
    values = []
    for step in range(n):
        base = 0.1 + 2.0 * math.exp(-5.0 * step / n)
        values.append(base * (1.0 + 0.05 * rng.gauss(0.0, 1.0)))
    values[n // 2] *= 10.0
    return values


def timed(write, values):
    start = time.perf_counter()
    write(values)
    return round(time.perf_counter() - start, 3)


def write_labmate(out, values):
    import labmate

    folder = os.path.join(out, "labmate")
    os.makedirs(folder, exist_ok=True)
    run = labmate.init(name="run", dir=folder)
    for v in values:
        labmate.log({"loss": v})
    labmate.finish()
    return run.id


def write_tensorboard(out, values):
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(os.path.join(out, "tb"))
    for step, v in enumerate(values):
        writer.add_scalar("loss", v, step)
    writer.close()


def write_trackio(values):
    import trackio

    trackio.init(project="bench", name="run")
    for v in values:
        trackio.log({"loss": v})
    trackio.finish()


def main():
    if len(sys.argv) != 3 or not sys.argv[2].isdigit() or int(sys.argv[2]) < 2:
        sys.exit("usage: TRACKIO_DIR=OUT/trackio python peers_lab.py OUT N  (N >= 2)")
    if not os.environ.get("TRACKIO_DIR"):
        sys.exit("peers_lab.py: set TRACKIO_DIR (Trackio writes to ~/.cache otherwise)")
    out, n = sys.argv[1], int(sys.argv[2])
    values = series(n)
    report = {"n": n, "spike_step": n // 2, "spike_value": values[n // 2], "write_s": {}}
    start = time.perf_counter()
    report["labmate_run"] = write_labmate(out, values)
    report["write_s"]["labmate"] = round(time.perf_counter() - start, 3)
    report["write_s"]["tensorboard"] = timed(lambda vs: write_tensorboard(out, vs), values)
    report["write_s"]["trackio"] = timed(write_trackio, values)
    with open(os.path.join(out, "peers.json"), "w") as f:
        json.dump(report, f)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
