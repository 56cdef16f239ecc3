"""Benchmark `labmate import` against reading the same history with the
tools' own readers, side by side in one run:

* TensorBoard: 200,000 scalars (4 runs x 5 tags x 10,000 steps, written by
  tensorboardX) read by `labmate import tensorboard`, by TensorBoard's
  `EventAccumulator` (every scalar kept) and by `tbparse`;
* MLflow: 200,000 points (2 runs x 10 keys x 10,000 steps) in a file store
  and in a SQLite store, read by `labmate import mlflow` and by
  `MlflowClient.get_metric_history` for every run and key.

Each labmate import goes into a fresh lab (the time includes writing the run
folders and indexing them with `labmate runs`). Run it in a venv that has
tensorboardX, tensorboard, tbparse and mlflow, with the release binary:

    LABMATE_BIN=target/release/labmate VENV/bin/python python/bench/bench_import.py [--repeat 3]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TB_RUNS, TB_TAGS, TB_STEPS = 4, 5, 10_000
ML_RUNS, ML_KEYS, ML_STEPS = 2, 10, 10_000


def write_tensorboard(root):
    from tensorboardX import SummaryWriter

    for r in range(TB_RUNS):
        writer = SummaryWriter(os.path.join(root, "run_%d" % r), flush_secs=3600, max_queue=100_000)
        for step in range(TB_STEPS):
            for t in range(TB_TAGS):
                writer.add_scalar("metric_%d" % t, 1.0 / (step + t + 1), step)
        writer.close()


def write_mlflow(uri):
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("bench")
    now = int(time.time() * 1000)
    for r in range(ML_RUNS):
        run = client.create_run(experiment, run_name="run_%d" % r)
        metrics = [Metric("key_%d" % k, 1.0 / (s + k + 1), now + s, s) for s in range(ML_STEPS) for k in range(ML_KEYS)]
        for i in range(0, len(metrics), 1000):
            client.log_batch(run.info.run_id, metrics=metrics[i:i + 1000])
        client.set_terminated(run.info.run_id)


def labmate_import(tool, source, binary):
    with tempfile.TemporaryDirectory(prefix="labmate-bench-import-") as lab:
        env = dict(os.environ, LABMATE_DIR=os.path.join(lab, ".labmate"))
        subprocess.run([binary, "init"], cwd=lab, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, LABMATE_DIR=""))
        start = time.perf_counter()
        subprocess.run([binary, "import", tool, source], cwd=lab, check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run([binary, "runs"], cwd=lab, check=True, env=env, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def event_accumulator(root):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    start = time.perf_counter()
    points = 0
    for run in sorted(os.listdir(root)):
        acc = EventAccumulator(os.path.join(root, run), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            points += len(acc.Scalars(tag))
    assert points == TB_RUNS * TB_TAGS * TB_STEPS, points
    return time.perf_counter() - start


def tbparse_read(root):
    from tbparse import SummaryReader

    start = time.perf_counter()
    frame = SummaryReader(root, extra_columns={"dir_name"}).scalars
    assert len(frame) == TB_RUNS * TB_TAGS * TB_STEPS, len(frame)
    return time.perf_counter() - start


def mlflow_read(uri):
    from mlflow.tracking import MlflowClient

    start = time.perf_counter()
    client = MlflowClient(tracking_uri=uri)
    points = 0
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            for key in run.data.metrics:
                points += len(client.get_metric_history(run.info.run_id, key))
    assert points == ML_RUNS * ML_KEYS * ML_STEPS, points
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    binary = os.path.abspath(os.environ.get("LABMATE_BIN", "labmate"))
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    work = tempfile.mkdtemp(prefix="labmate-bench-import-src-")
    try:
        tb = os.path.join(work, "tb")
        write_tensorboard(tb)
        file_store = os.path.join(work, "mlruns")
        write_mlflow("file://" + file_store)
        db = "sqlite:///" + os.path.join(work, "mlflow.db")
        write_mlflow(db)
        rows = []

        def measure(label, fn):
            times = [fn() for _ in range(args.repeat)]
            rows.append((label, statistics.median(times), min(times)))
            print("%-60s %.3f s" % (label, rows[-1][1]), file=sys.stderr)

        measure("labmate import tensorboard", lambda: labmate_import("tensorboard", tb, binary))
        measure("TensorBoard EventAccumulator", lambda: event_accumulator(tb))
        measure("tbparse SummaryReader(...).scalars", lambda: tbparse_read(tb))
        measure("labmate import mlflow (file store)", lambda: labmate_import("mlflow", file_store, binary))
        measure("MlflowClient.get_metric_history (file store)", lambda: mlflow_read("file://" + file_store))
        measure("labmate import mlflow (SQLite)", lambda: labmate_import("mlflow", db, binary))
        measure("MlflowClient.get_metric_history (SQLite)", lambda: mlflow_read(db))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d TensorBoard scalars, %d MLflow points per store; median of %d runs, Python %s\n"
          % (TB_RUNS * TB_TAGS * TB_STEPS, ML_RUNS * ML_KEYS * ML_STEPS, args.repeat, sys.version.split()[0]))
    print("| reader | median s | min s |")
    print("|---|---:|---:|")
    for label, median, best in rows:
        print("| %s | %.3f | %.3f |" % (label, median, best))


if __name__ == "__main__":
    main()
