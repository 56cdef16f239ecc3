"""Benchmark log() of labmate against the peers that are installed.

Every tool logs CALLS records of 10 float scalars (random values, the same
for every tool), each run in a fresh subprocess with its own temporary folder:

* per call: every log() call timed with perf_counter_ns; median and p99.
* total: the same loop without the timers, plus finish() (when finish
  returns the data is on disk). The timers cost about half a microsecond a
  call, the same for every tool, which would blur the ratio of totals; the
  table also shows the timed loop's total for reference.

Each measurement runs REPEAT times (once when a run takes over a minute) and
the table shows the medians. Peers: trackio (local), wandb (offline), mlflow
(local SQLite store); one that is not importable is skipped with a note. Also
reports labmate's max RSS growth over --rss-calls log() calls of 10 scalars
(default 1,000,000 calls, that is 10,000,000 points).

    python3 python/bench/bench_log.py [--calls 20000] [--repeat 5] [--json]

The wandb stand-in against real wandb, in a venv that has wandb:

    VENV/bin/python python/bench/bench_log.py --tools labmate.wandb,wandb --base labmate.wandb
"""

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_DIR = os.path.dirname(HERE)  # python/, holding the labmate package
KEYS = ["train/loss", "train/acc", "lr", "grad_norm", "val/loss",
        "val/acc", "throughput", "gpu_mem", "epoch_frac", "loss_scale"]
PEERS = ["trackio", "wandb", "mlflow"]
SLOW_S = 60  # a tool this slow runs once, not --repeat times


def make_data(calls):
    rng = random.Random(0)
    return [{key: rng.random() for key in KEYS} for _ in range(calls)]


# -- one tool, in a child process -------------------------------------------


def setup_labmate(workdir):
    sys.path.insert(0, CLIENT_DIR)  # benchmark this checkout's client
    import labmate

    labmate.init(name="bench", dir=workdir)
    return labmate.log, labmate.finish, labmate.__version__


def setup_labmate_wandb(workdir):
    """labmate's wandb stand-in, called as a wandb script calls wandb."""
    sys.path.insert(0, CLIENT_DIR)
    import labmate.wandb as wandb

    wandb.init(project="bench", name="bench", mode="offline", dir=workdir)
    return wandb.log, wandb.finish, "stand-in of wandb " + wandb.__version__


def setup_trackio(workdir):
    import trackio

    trackio.init(project="bench", name="bench")
    return trackio.log, trackio.finish, trackio.__version__


def setup_wandb(workdir):
    import wandb

    wandb.init(project="bench", name="bench", mode="offline", dir=workdir)
    return wandb.log, wandb.finish, wandb.__version__


def setup_mlflow(workdir):
    import mlflow

    mlflow.set_tracking_uri("sqlite:///" + os.path.join(workdir, "mlflow.db"))
    mlflow.start_run(run_name="bench")

    def log(data, step):
        mlflow.log_metrics(data, step=step)

    return log, mlflow.end_run, mlflow.__version__


SETUPS = {"labmate": setup_labmate, "labmate.wandb": setup_labmate_wandb, "trackio": setup_trackio,
          "wandb": setup_wandb, "mlflow": setup_mlflow}


def child_per_call(tool, calls, workdir):
    data = make_data(calls)
    log, finish, version = SETUPS[tool](workdir)
    needs_step = tool == "mlflow"  # the others count steps themselves
    clock = time.perf_counter_ns
    per_call = [0] * calls
    start = time.perf_counter()
    for i in range(calls):
        if needs_step:
            t0 = clock()
            log(data[i], i)
            per_call[i] = clock() - t0
        else:
            t0 = clock()
            log(data[i])
            per_call[i] = clock() - t0
    finish()
    end = time.perf_counter()
    per_call.sort()
    return {"tool": tool, "version": version, "calls": calls,
            "median_us": statistics.median(per_call) / 1000,
            "p99_us": per_call[int(calls * 0.99)] / 1000,
            "timed_total_s": end - start}


def child_total(tool, calls, workdir):
    data = make_data(calls)
    log, finish, version = SETUPS[tool](workdir)
    start = time.perf_counter()
    if tool == "mlflow":
        for i in range(calls):
            log(data[i], i)
    else:
        for i in range(calls):
            log(data[i])
    loop_end = time.perf_counter()
    finish()
    end = time.perf_counter()
    return {"loop_s": loop_end - start, "finish_s": end - loop_end, "total_s": end - start}


def child_rss(calls, workdir, tool="labmate"):
    """Max RSS growth while logging `calls` records of 10 floats."""
    pool = make_data(1000)  # reused, so the input itself takes no memory
    log, finish, version = SETUPS[tool](workdir)
    for i in range(1000):
        log(pool[i])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for i in range(calls):
        log(pool[i % 1000])
    finish()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"calls": calls, "points": calls * len(KEYS),
            "rss_growth_mb": (after - before) / 1024, "seconds": seconds}


# -- the parent: run the children, print the table --------------------------


def child_env(workdir):
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("LABMATE_", "WANDB_", "TRACKIO_", "MLFLOW_")):
            del env[name]
    env.update({
        "HOME": workdir,
        "TRACKIO_DIR": os.path.join(workdir, "trackio"),
        "WANDB_DIR": workdir,
        "WANDB_CACHE_DIR": os.path.join(workdir, "wandb-cache"),
        "WANDB_CONFIG_DIR": os.path.join(workdir, "wandb-config"),
        "WANDB_DATA_DIR": os.path.join(workdir, "wandb-data"),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        # No network here: keep every tool from trying to phone home.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    })
    return env


def run_child(args, timeout=1800):
    # What the last child wrote goes to disk first, so that its writeback
    # does not land on the next child's timing.
    os.sync()
    with tempfile.TemporaryDirectory(prefix="labmate-bench-") as workdir:
        out = os.path.join(workdir, "result.json")
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--out", out] + args,
            cwd=workdir, env=child_env(workdir), timeout=timeout,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError("%s failed (exit %d): %s" % (args, done.returncode, " | ".join(tail)))
        with open(out) as f:
            return json.load(f)


def importable(tool):
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec(%r) is None)" % tool
    return subprocess.run([sys.executable, "-c", code]).returncode == 0


def measure(tool, calls, repeat, notes):
    """Median of `repeat` runs of both measurements, or None."""
    runs = []
    for _ in range(repeat):
        try:
            run = run_child(["--child", tool, "--mode", "per-call", "--calls", str(calls)])
            run.update(run_child(["--child", tool, "--mode", "total", "--calls", str(calls)]))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            notes.append("%s: %s" % (tool, exc))
            print("note: " + notes[-1], file=sys.stderr)
            break
        runs.append(run)
        if run["total_s"] > SLOW_S:
            notes.append("%s: one run only (%.0f s each)" % (tool, run["total_s"]))
            break
    if not runs:
        return None
    row = dict(runs[0])
    for field in ("median_us", "p99_us", "timed_total_s", "loop_s", "finish_s", "total_s"):
        row[field] = statistics.median(run[field] for run in runs)
    row["repeats"] = len(runs)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rss-calls", type=int, default=1_000_000)
    parser.add_argument("--tools", default=",".join(["labmate"] + PEERS))
    parser.add_argument("--base", default="labmate",
                        help="the tool the ratios and the RSS growth are of (labmate, or labmate.wandb for the stand-in)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        workdir = os.getcwd()
        if args.child.endswith("-rss"):
            result = child_rss(args.rss_calls, workdir, args.child[: -len("-rss")])
        elif args.mode == "per-call":
            result = child_per_call(args.child, args.calls, workdir)
        else:
            result = child_total(args.child, args.calls, workdir)
        with open(args.out, "w") as f:
            json.dump(result, f)
        return

    results, notes = [], []
    for tool in args.tools.split(","):
        if not tool.startswith("labmate") and not importable(tool):
            notes.append("%s: not installed, skipped" % tool)
            print("note: " + notes[-1], file=sys.stderr)
            continue
        row = measure(tool, args.calls, args.repeat, notes)
        if row:
            results.append(row)
    rss = run_child(["--child", args.base + "-rss", "--rss-calls", str(args.rss_calls)]) \
        if args.rss_calls else None

    base = next((r for r in results if r["tool"] == args.base), None)
    for row in results:
        if base:
            row["median_ratio"] = row["median_us"] / base["median_us"]
            row["total_ratio"] = row["total_s"] / base["total_s"]
    report = {"python": sys.version.split()[0], "calls": args.calls,
              "repeat": args.repeat, "results": results, "rss": rss, "notes": notes}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print("%d log() calls of 10 float scalars, median of %d runs, Python %s\n"
          % (args.calls, args.repeat, report["python"]))
    print("| tool | version | median µs/call | p99 µs/call | loop + finish s "
          "| same, every call timed s | median vs %s | total vs %s |" % (args.base, args.base))
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for row in results:
        print("| %s | %s | %.2f | %.2f | %.3f | %.3f | %s | %s |" % (
            row["tool"], row["version"], row["median_us"], row["p99_us"], row["total_s"],
            row["timed_total_s"],
            "%.1fx" % row["median_ratio"] if base else "-",
            "%.1fx" % row["total_ratio"] if base else "-"))
    if rss:
        print("\n%s max RSS growth over %d log() calls (%d points): %.1f MB (%.1f s)"
              % (args.base, rss["calls"], rss["points"], rss["rss_growth_mb"], rss["seconds"]))
    for note in notes:
        print("\nnote: " + note)


if __name__ == "__main__":
    main()
