"""``wandb.Api()`` over the nearest lab: runs with wandb's Mongo-style
filters, a run's config, summary and state, its history and every row.

Reads go through the ``labmate`` binary's JSON (``LABMATE_BIN``, else
``labmate`` on ``PATH``), never a server. labmate's statuses map to wandb's
states: running and queued as they are... see ``_STATES``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
from typing import Any, Iterable, Iterator, List, Optional

from ._term import Error, _unrecorded

# labmate status -> wandb state
_STATES = {
    "queued": "pending",
    "running": "running",
    "finished": "finished",
    "failed": "failed",
    "stopped": "killed",
    "lost": "crashed",
}


def _binary() -> str:
    named = os.environ.get("LABMATE_BIN")
    if named:
        return named
    found = shutil.which("labmate")
    if found is None:
        raise Error("wandb.Api() reads the lab through the labmate binary: put `labmate` on PATH or set LABMATE_BIN")
    return found


def _labmate(args: List[str], lab: Optional[str]) -> subprocess.Popen:
    env = dict(os.environ)
    if lab:
        env["LABMATE_DIR"] = lab
    return subprocess.Popen([_binary()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _json(args: List[str], lab: Optional[str]):
    process = _labmate(args, lab)
    out, err = process.communicate()
    if process.returncode != 0:
        message = err.decode("utf-8", "replace").strip().splitlines()
        raise Error("labmate %s: %s" % (" ".join(args[:2]), message[-1] if message else "failed"))
    return json.loads(out.decode("utf-8"), parse_constant=_constant)


def _constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def _number(value):
    if isinstance(value, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
    return value


class Api:
    """The read API over the nearest lab (LABMATE_DIR, else the lab found
    from the working folder), or over `lab` when given."""

    def __init__(self, overrides: Optional[dict] = None, timeout: Optional[int] = None, api_key=None,
                 lab: Optional[str] = None, **_ignored):
        self._lab = lab or (overrides or {}).get("lab") or _nearest_lab()
        self.settings = dict(overrides or {})

    @property
    def default_entity(self) -> str:
        return "local"

    def runs(self, path: Optional[str] = None, filters: Optional[dict] = None, order: str = "-created_at",
             per_page: int = 50, include_sweeps: bool = True, **_ignored) -> "Runs":
        """The lab's runs (those of `path`'s project when it names one)
        for which `filters` holds, sorted by `order`."""
        docs = [Run(doc, self) for doc in _json(["runs", "--json"], self._lab)]
        project = _project_of(path)
        if project is not None:
            docs = [r for r in docs if r.project == project]
        if filters:
            docs = [r for r in docs if _matches(r._filterable(), filters)]
        return Runs(_ordered(docs, order))

    def run(self, path: str) -> "Run":
        """One run, by `entity/project/id`, `project/id`, or id (labmate's
        id, a unique prefix, or its name)."""
        wanted = str(path).replace("/runs/", "/").rstrip("/").rsplit("/", 1)[-1]
        shown = _json(["show", wanted, "--json"], self._lab)
        doc = shown.get("run", shown) if isinstance(shown, dict) else shown
        return Run(doc, self)

    def project(self, name, entity=None):
        return _unrecorded("Api.project")

    def flush(self) -> None:
        pass

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _unrecorded("Api." + name)


class Runs(list):
    """The runs `Api.runs()` found: a list, as wandb's is iterable."""

    @property
    def length(self) -> int:
        return len(self)


class Run:
    """A recorded run, read back."""

    def __init__(self, doc: dict, api: Api):
        self._doc = doc
        self._api = api
        self.id = doc.get("id")
        self.name = doc.get("name") or self.id
        self.display_name = self.name
        self.state = _STATES.get(doc.get("status"), str(doc.get("status")))
        self.config = dict(doc.get("config") or {})
        self.tags = list(doc.get("tags") or [])
        self.group = doc.get("group")
        self.job_type = doc.get("job_type")
        self.notes = doc.get("notes")
        self.project = doc.get("project")
        self.entity = "local"
        self.created_at = doc.get("created_at")
        self.exit_code = doc.get("exit_code")
        metrics = doc.get("metrics") or {}
        self._metrics = metrics
        summary = {k: _number(v.get("last")) for k, v in metrics.items() if isinstance(v, dict) and not k.startswith("sys/")}
        summary.update(doc.get("summary") or {})
        self.summary = summary
        self.summary_metrics = summary
        steps = [v.get("last_step") for k, v in metrics.items() if isinstance(v, dict) and not k.startswith("sys/")]
        self.lastHistoryStep = max([s for s in steps if isinstance(s, int)], default=-1)
        self.path = [self.entity, self.project or "uncategorized", self.id]
        self.url = os.path.join(api._lab, "runs", self.id) if api._lab and self.id else None
        self.metric_defs = list(doc.get("metric_defs") or [])

    def _filterable(self) -> dict:
        return {
            "config": self.config,
            "summary_metrics": self.summary,
            "summary": self.summary,
            "state": self.state,
            "tags": self.tags,
            "group": self.group,
            "display_name": self.name,
            "name": self.id,
            "id": self.id,
            "created_at": self.created_at,
            "createdAt": self.created_at,
            "jobType": self.job_type,
            "job_type": self.job_type,
            "notes": self.notes,
            "project": self.project,
        }

    def __repr__(self) -> str:
        return "<labmate Run %s (%s)>" % (self.id, self.state)

    def history(self, samples: int = 500, keys: Optional[Iterable[str]] = None, x_axis: str = "_step",
                pandas: bool = True, stream: str = "default"):
        """About `samples` rows, downsampled keeping spikes as `metrics
        --points` does: a pandas DataFrame when pandas is importable, else a
        list of dicts. With `keys`, only rows that have all of them."""
        rows = self._rows(keys, x_axis, max(int(samples), 1))
        if pandas:
            try:
                import pandas as pd  # type: ignore
            except ImportError:
                return rows
            return pd.DataFrame(rows)
        return rows

    def scan_history(self, keys: Optional[Iterable[str]] = None, page_size: int = 1000,
                     min_step: Optional[int] = None, max_step: Optional[int] = None) -> Iterator[dict]:
        """Every row from min_step up to (not including) max_step, one at a
        time, streamed from `labmate metrics --rows --csv`."""
        args = ["metrics", self.id] + [str(k) for k in keys or []] + ["--rows", "--csv"]
        if keys is not None:
            args.append("--all")
        process = _labmate(args, self._api._lab)
        try:
            reader = csv.reader(io.TextIOWrapper(process.stdout, encoding="utf-8", newline=""))
            columns = next(reader, None)
            if columns is None:
                process.wait()
                message = process.stderr.read().decode("utf-8", "replace").strip().splitlines()
                raise Error("labmate metrics: %s" % (message[-1] if message else "failed"))
            start = None
            for values in reader:
                step, timestamp = int(values[0]), float(values[1])
                start = timestamp if start is None else start
                if min_step is not None and step < min_step:
                    continue
                if max_step is not None and step >= max_step:
                    break
                row = {"_step": step, "_timestamp": timestamp, "_runtime": timestamp - start}
                for name, value in zip(columns[2:], values[2:]):
                    if value != "":
                        row[name] = float(value)
                yield row
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
            process.stderr.close()

    def _rows(self, keys, x_axis: str, samples: Optional[int]) -> List[dict]:
        wanted = [str(k) for k in keys] if keys is not None else None
        asked = list(wanted or [])
        if wanted is not None and x_axis not in ("_step", "_timestamp", "_runtime") and x_axis not in asked:
            asked.append(x_axis)
        args = ["metrics", self.id] + asked + ["--rows", "--json"]
        if wanted is not None:
            args.append("--all")
        if samples is not None:
            args += ["--points", str(samples)]
        table = _json(args, self._api._lab)
        columns = table["columns"]
        out = []
        start = None
        for values in table["rows"]:
            row = {}
            for name, value in zip(columns, values):
                if name == "step":
                    row["_step"] = value
                elif name == "time":
                    row["_timestamp"] = value
                    if start is None:
                        start = value
                    row["_runtime"] = value - start
                elif value is not None:
                    row[name] = _number(value)
            out.append(row)
        return out

    def update(self) -> None:
        pass

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return _unrecorded("apis.public.Run." + name)


def _nearest_lab() -> Optional[str]:
    named = os.environ.get("LABMATE_DIR")
    if named:
        return os.path.abspath(named)
    folder = os.getcwd()
    while True:
        if os.path.isfile(os.path.join(folder, ".labmate", "lab.json")):
            return os.path.join(folder, ".labmate")
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _project_of(path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    parts = [p for p in str(path).split("/") if p]
    if not parts:
        return None
    return parts[-1] if len(parts) <= 2 else parts[1]


# -- filters -------------------------------------------------------------------

_MISSING = object()


def _lookup(doc: dict, path: str):
    value: Any = doc
    parts = path.split(".")
    for i, part in enumerate(parts):
        if isinstance(value, dict) and part in value:
            value = value[part]
            continue
        # wandb's config filters say config.lr.value; labmate stores config.lr.
        if part == "value" and i == len(parts) - 1 and i > 0:
            return value
        # a key that itself holds dots (train/loss.x)
        if isinstance(value, dict):
            rest = ".".join(parts[i:])
            if rest in value:
                return value[rest]
        return _MISSING
    return value


def _compare(op: str, actual, expected) -> bool:
    if op == "$exists":
        return (actual is not _MISSING and actual is not None) == bool(expected)
    if actual is _MISSING:
        return op in ("$ne", "$nin")
    if isinstance(actual, list) and op not in ("$size",):
        if op in ("$ne", "$nin"):
            return all(_compare(op, a, expected) for a in actual)
        return any(_compare(op, a, expected) for a in actual)
    if op == "$eq":
        return actual == expected
    if op == "$ne":
        return actual != expected
    if op == "$in":
        return actual in list(expected)
    if op == "$nin":
        return actual not in list(expected)
    if op == "$regex":
        return isinstance(actual, str) and re.search(str(expected), actual) is not None
    try:
        if op == "$gt":
            return actual > expected
        if op == "$gte":
            return actual >= expected
        if op == "$lt":
            return actual < expected
        if op == "$lte":
            return actual <= expected
    except TypeError:
        return False
    raise Error("unknown filter operator %r" % op)


def _matches(doc: dict, filters) -> bool:
    if not isinstance(filters, dict):
        raise Error("filters must be a dict, not %s" % type(filters).__name__)
    for key, condition in filters.items():
        if key == "$and":
            if not all(_matches(doc, f) for f in condition):
                return False
        elif key == "$or":
            if not any(_matches(doc, f) for f in condition):
                return False
        elif key == "$nor":
            if any(_matches(doc, f) for f in condition):
                return False
        elif key == "$not":
            if _matches(doc, condition):
                return False
        else:
            actual = _lookup(doc, key)
            if isinstance(condition, dict) and condition and all(str(k).startswith("$") for k in condition):
                for op, expected in condition.items():
                    if op == "$options":
                        continue
                    if op == "$not":
                        if _matches(doc, {key: expected}):
                            return False
                    elif not _compare(op, actual, expected):
                        return False
            elif not _compare("$eq", actual, condition):
                return False
    return True


def _ordered(runs: List[Run], order: Optional[str]) -> List[Run]:
    if not order:
        return runs
    descending = order.startswith("-")
    path = order.lstrip("+-")
    present = [(r, _lookup(r._filterable(), path)) for r in runs]
    with_value = [(r, v) for r, v in present if v is not _MISSING and v is not None]
    without = [r for r, v in present if v is _MISSING or v is None]
    try:
        with_value.sort(key=lambda rv: rv[1], reverse=descending)
    except TypeError:
        with_value.sort(key=lambda rv: str(rv[1]), reverse=descending)
    return [r for r, _ in with_value] + without
