"""The stand-in's run: wandb's ``Run`` over a labmate run, with wandb's
``config``, ``summary``, step semantics and metric definitions.

``log()`` is the hot path. A dict of plain numbers goes straight onto the
labmate writer's queue as one point per key (the flusher thread encodes
it); anything else (nested dicts, media, tensors, strings) takes the slow
path once per call, which flattens, converts and saves.
"""

from __future__ import annotations

import collections.abc
import fnmatch
import glob as _glob
import json
import math
import numbers
import operator
import os
import shutil
import threading
import time
from typing import Any, Optional

from .._records import _metric_float, _now
from .._writer import _MAX_QUEUED
from . import _media
from ._term import ConfigError, _once, termwarn

# Value types logged as they are: the writer turns each into a double. Other
# number types (numpy scalars...) join the set the first time they are seen.
_PLAIN = {float, int, bool}
_SUMS = (int, float)
_STEP_LIMIT = 2**63 - 1
_SUMMARY_KINDS = ("min", "max", "mean", "last", "best", "first", "none", "copy")


def _parse_config(config) -> dict:
    """init()'s and update()'s config as a dict: a mapping, an
    argparse.Namespace (or any object with attributes), absl flags, or the
    path of a YAML or JSON file."""
    if config is None:
        return {}
    if isinstance(config, (str, os.PathLike)):
        return _config_file(os.fspath(config))
    if isinstance(config, collections.abc.Mapping):
        return dict(config)
    if hasattr(config, "flag_values_dict"):  # absl flags
        return dict(config.flag_values_dict())
    if hasattr(config, "__dict__"):  # argparse.Namespace and the like
        return {k: v for k, v in vars(config).items() if not k.startswith("_")}
    raise TypeError("config must be a dict, a namespace or a file path, not %s" % type(config).__name__)


def _config_file(path: str) -> dict:
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        data = json.loads(text)
    else:
        data = _yaml(text)
    if not isinstance(data, dict):
        raise TypeError("config file %s does not hold a mapping" % path)
    # wandb's config-defaults.yaml form: key: {desc: ..., value: ...}
    out = {}
    for key, value in data.items():
        if key == "wandb_version":
            continue
        if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
            value = value["value"]
        out[key] = value
    return out


def _yaml(text: str):
    """PyYAML when the script has it, else the subset config files use:
    nested mappings by indentation, scalars, inline lists."""
    try:
        import yaml  # type: ignore
    except ImportError:
        return _yaml_subset(text)
    return yaml.safe_load(text)


def _yaml_subset(text: str) -> dict:
    root: dict = {}
    stack = [(-1, root)]
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith(("#", "---")):
            continue
        indent = len(line) - len(line.lstrip())
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise ValueError("config file line %d: %r is not `key: value`" % (number, raw))
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        key = _scalar(key.strip())
        if value.strip():
            parent[key] = _scalar(value.strip())
        else:
            parent[key] = {}
            stack.append((indent, parent[key]))
    return root


def _scalar(text: str):
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(part.strip()) for part in text[1:-1].split(",") if part.strip()]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~", "none"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _friendly(value):
    """A config value as wandb stores it: numpy and torch scalars as
    numbers, tuples as lists, namespaces as dicts."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, collections.abc.Mapping):
        return {str(k): _friendly(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_friendly(v) for v in value]
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        try:
            return value.item()
        except Exception:
            pass
    if hasattr(value, "tolist"):
        try:
            return value.tolist()
        except Exception:
            pass
    if hasattr(value, "__dict__") and type(value).__name__ == "Namespace":
        return {k: _friendly(v) for k, v in vars(value).items()}
    return str(value) if not isinstance(value, numbers.Number) else value


class Config:
    """``run.config``: attributes and items, wandb's rule that a key keeps
    its value unless ``allow_val_change=True``; every change is recorded in
    the labmate run's config."""

    def __init__(self, run: "Run", items: dict):
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_items", dict(items))
        object.__setattr__(self, "_locked", set())

    def _changes(self, d, allow_val_change) -> dict:
        changes = {}
        for key, value in _parse_config(d).items():
            key = str(key).strip("-")
            if key in self._locked:
                termwarn("Config item '%s' was locked (ignored update)." % key)
                continue
            value = _friendly(value)
            if not allow_val_change and key in self._items and self._items[key] != value:
                raise ConfigError(
                    "Attempted to change value of key %r from %r to %r; pass allow_val_change=True to "
                    "config.update() to change it" % (key, self._items[key], value)
                )
            changes[key] = value
        return changes

    def _store(self, changes: dict) -> None:
        if changes:
            self._items.update(changes)
            self._run._record_config(changes)

    def update(self, d=None, allow_val_change=None) -> None:
        self._store(self._changes(d or {}, allow_val_change))

    def setdefaults(self, d) -> None:
        self._store({k: v for k, v in self._changes(d, True).items() if k not in self._items})

    def update_locked(self, d, user=None, _allow_val_change=None) -> None:
        changes = self._changes(d, True)
        self._locked.update(changes)
        self._store(changes)

    merge_locked = update_locked

    def persist(self) -> None:
        pass

    def __setitem__(self, key, value) -> None:
        self._store(self._changes({key: value}, False))

    __setattr__ = __setitem__

    def __getitem__(self, key):
        return self._items[key]

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError("config has no key %r" % key) from None

    def __delitem__(self, key) -> None:
        raise TypeError("config keys cannot be removed")

    def __contains__(self, key) -> bool:
        return key in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, *args):
        return self._items.get(*args)

    def keys(self):
        return [k for k in self._items if not str(k).startswith("_")]

    def items(self):
        return [(k, v) for k, v in self._items.items() if not str(k).startswith("_")]

    def values(self):
        return [v for _, v in self.items()]

    def as_dict(self) -> dict:
        return dict(self._items)

    _as_dict = as_dict

    def __repr__(self) -> str:
        return repr(self._items)


class Summary(collections.abc.MutableMapping):
    """``run.summary``: the last value of every logged key (or what
    ``define_metric(summary=...)`` asks for), overlaid by what the script
    sets, which is recorded at once; the rest is recorded when the run
    finishes."""

    def __init__(self, run: "Run"):
        self._run = run
        self._set: dict = {}

    def _view(self) -> dict:
        return self._run._auto_summary()

    def __getitem__(self, key):
        if key in self._set:
            return self._set[key]
        return self._view()[key]

    def __setitem__(self, key, value) -> None:
        self.update({key: value})

    def __delitem__(self, key) -> None:
        self._set.pop(key, None)
        with self._run._fold_lock:
            self._run._last.pop(key, None)

    def __iter__(self):
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())

    def __contains__(self, key) -> bool:
        return key in self._set or key in self._view()

    def _merged(self) -> dict:
        merged = self._view()
        merged.update(self._set)
        return merged

    def update(self, d=None, **kwargs) -> None:  # type: ignore[override]
        changes = dict(d or {}, **kwargs)
        if not changes:
            return
        changes = {str(k): _friendly(v) for k, v in changes.items()}
        self._set.update(changes)
        self._run._record_summary(changes)

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value) -> None:
        if key.startswith("_"):
            object.__setattr__(self, key, value)
        else:
            self[key] = value

    def __repr__(self) -> str:
        return repr(self._merged())


class _Metric:
    """What ``define_metric()`` returns."""

    def __init__(self, name, step_metric=None, step_sync=None, hidden=None, summary=None, goal=None):
        self.name = name
        self.step_metric = step_metric
        self.step_sync = step_sync
        self.hidden = hidden
        self.summary = summary
        self.goal = goal

    def __repr__(self) -> str:
        return "<wandb metric %r>" % self.name


class Artifact:
    """Files and metadata recorded in the run folder (``artifacts/<name>/``)
    when logged; nothing is uploaded."""

    def __init__(self, name: str, type: str = "unspecified", description=None, metadata=None,
                 incremental=False, use_as=None, **_ignored):
        self.name = str(name)
        self.type = str(type)
        self.description = description
        self.metadata = dict(metadata or {})
        self.aliases: list = []
        self.version = None
        self._entries: list = []  # (name in the artifact, local path)
        self._references: list = []
        self._path: Optional[str] = None

    def add_file(self, local_path, name=None, is_tmp=False, **_ignored):
        local_path = os.fspath(local_path)
        self._entries.append((name or os.path.basename(local_path), local_path))

    def add_dir(self, local_path, name=None, **_ignored):
        local_path = os.fspath(local_path)
        for folder, _dirs, files in os.walk(local_path):
            for f in files:
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, local_path)
                self._entries.append((os.path.join(name, rel) if name else rel, path))

    def add_reference(self, uri, name=None, **_ignored):
        self._references.append({"uri": str(uri), "name": name})

    def add(self, obj, name):
        if isinstance(obj, _media._Media):
            self._entries.append((str(name), obj))

    def new_file(self, name, mode="x", encoding=None):
        import tempfile

        folder = tempfile.mkdtemp(prefix="labmate-artifact-")
        path = os.path.join(folder, os.path.basename(name))
        self._entries.append((name, path))
        return open(path, "w" if "b" not in mode else "wb", encoding=encoding)

    def download(self, root=None, **_ignored) -> Optional[str]:
        return self._path

    def file(self, root=None) -> Optional[str]:
        if self._path is None:
            return None
        files = [f for f in os.listdir(self._path) if f != "manifest.json"]
        return os.path.join(self._path, files[0]) if len(files) == 1 else None

    def wait(self, timeout=None):
        return self

    def save(self, *args, **kwargs):
        return self

    def get_path(self, name):
        return os.path.join(self._path, name) if self._path else None

    def __repr__(self) -> str:
        return "<labmate artifact %s:%s>" % (self.name, self.version)


def _step_value(step) -> Optional[int]:
    if step.__class__ is int:
        return step
    try:
        return operator.index(step)
    except Exception:
        pass
    try:
        number = float(step)
    except Exception:
        return None
    return int(number) if number.is_integer() else None


class Run:
    """The run ``wandb.init()`` returns: records into a labmate run."""

    def __init__(self, lm_run, *, project=None, entity=None, group=None, job_type=None, notes=None,
                 config=None, settings=None, lab=None, on_finish=None):
        self._lm = lm_run
        self._lab = lab
        self._on_finish = on_finish
        self._finished = False
        self._step = 0
        self._pending: Optional[dict] = None
        self._last: dict = {}
        self._rules: dict = {}  # metric name or glob -> summary kinds, when any asks
        self._rule_of: dict = {}  # key -> its kinds, resolved once
        self._aggregates: dict = {}  # key -> {"min": ..., "max": ..., ...}
        self._media_seen: set = set()
        self._dropped_steps = 0
        self._row_step = 0  # the step the row being converted will have
        self._start = time.time()
        self._queue = lm_run._queue if lm_run is not None else None
        self._writer = lm_run._writer if lm_run is not None else None
        self._fold_lock = threading.Lock()
        if self._writer is not None:
            self._writer.on_points = self._fold
        self.project = project
        self.entity = entity
        self.group = group
        self.job_type = job_type
        self._notes = notes
        self.settings = settings
        self.config = Config(self, config or {})
        self.summary = Summary(self)
        self._metrics: dict = {}

    # -- what the run is -----------------------------------------------------

    @property
    def id(self) -> str:
        return self._lm.id if self._lm is not None else "disabled"

    @property
    def name(self) -> Optional[str]:
        return self._lm.name if self._lm is not None else None

    @name.setter
    def name(self, value) -> None:
        if self._lm is not None:
            self._lm.name = str(value)
            self._record_meta(name=str(value))

    display_name = name

    @property
    def tags(self) -> tuple:
        return tuple(self._lm.tags) if self._lm is not None else ()

    @tags.setter
    def tags(self, value) -> None:
        if self._lm is None:
            return
        new = [str(t) for t in value if str(t) not in self._lm.tags]
        if new:
            self._lm.tags.extend(new)
            self._record_meta(tags=new)

    @property
    def notes(self):
        return self._notes

    @notes.setter
    def notes(self, value) -> None:
        self._notes = value
        self._record_meta(notes=str(value))

    @property
    def dir(self) -> str:
        folder = os.path.join(self._lm.dir, "files") if self._lm is not None else os.path.abspath(".")
        os.makedirs(folder, exist_ok=True)
        return folder

    @property
    def step(self) -> int:
        return self._step

    @property
    def start_time(self) -> float:
        return self._start

    @property
    def path(self) -> str:
        return "/".join([self.entity or "local", self.project or "uncategorized", self.id])

    @property
    def url(self) -> Optional[str]:
        return self.get_url()

    def get_url(self) -> Optional[str]:
        """The dashboard's page of the run when LABMATE_URL names the
        dashboard, else the run folder."""
        if self._lm is None:
            return None
        base = os.environ.get("LABMATE_URL")
        if base:
            return "%s/run/%s" % (base.rstrip("/"), self.id)
        return self._lm.dir

    def get_project_url(self):
        return self._lab

    def get_sweep_url(self):
        return None

    sweep_id = None
    resumed = False
    offline = True
    disabled = False
    starting_step = 0

    def __repr__(self) -> str:
        return "<labmate wandb Run %s name=%r>" % (self.id, self.name)

    # -- the hot path ----------------------------------------------------------

    def log(self, data, step=None, commit=None, sync=None) -> None:
        """Record one row, with wandb's steps: each commit is the next
        `_step`; `commit=False` adds to the pending row; a given `step`
        above the current one commits the pending row first and keeps
        adding until a later step or commit; one below it is dropped."""
        if self._finished:
            _once("run %s is finished; wandb.log() ignored" % self.id)
            return
        # Plain numbers only? Their sum, in C, is then an int or a float;
        # anything else (a tensor, a numpy scalar, a dict, media, text)
        # makes it something else or raises, and takes the slow path.
        try:
            plain = data.__class__ is dict and sum(data.values()).__class__ in _SUMS
        except Exception:
            plain = False
        if not plain:
            given = _step_value(step) if step is not None else None
            self._row_step = given if given is not None and given > self._step else self._step
            data = self._convert(data)
            if data is None:
                return
        if step is None and commit is None and self._pending is None:
            # The common call: the row is the next step.
            if data:
                queue = self._queue
                queue.append((self._step, time.time_ns(), dict(data)))
                if len(queue) > _MAX_QUEUED:
                    self._writer.flush()
            self._step += 1
            return
        if step is None:
            pending = self._pending
            if pending is None:
                if commit is False:
                    self._pending = dict(data)
                    return
                row = dict(data)
            else:
                pending.update(data)
                if commit is False:
                    return
                row, self._pending = pending, None
        else:
            given = _step_value(step)
            if given is None or not 0 <= given <= _STEP_LIMIT:
                termwarn("step %r is not a non-negative integer; logged at step %d" % (step, self._step), repeat=False)
                given = self._step
            if given < self._step:
                self._dropped(given, data)
                return
            if given > self._step:
                if self._pending is not None:
                    self._commit(self._pending)
                    self._pending = None
                self._step = given
            if self._pending is None:
                self._pending = dict(data)
            else:
                self._pending.update(data)
            if not commit:
                return
            row, self._pending = self._pending, None
        self._commit(row)

    def _commit(self, row: dict) -> None:
        step = self._step
        self._step = step + 1
        if not row:
            return
        queue = self._queue
        queue.append((step, time.time_ns(), row))
        if len(queue) > _MAX_QUEUED:
            self._writer.flush()

    def _fold(self, rows: list) -> None:
        """The flusher's rows into the summary's last values (and the
        aggregates definitions ask for): off the hot path."""
        with self._fold_lock:
            last = self._last
            for row in rows:
                last.update(row)
            if self._rules:
                for row in rows:
                    self._aggregate(row)

    def _dropped(self, step: int, data) -> None:
        self._dropped_steps += 1
        if self._dropped_steps <= 5:
            termwarn(
                "Tried to log to step %d that is less than the current step %d. Steps must be monotonically "
                "increasing, so this data will be ignored." % (step, self._step)
            )
        if self._dropped_steps == 1:
            self._lm._event("warning", "wandb.log() at step %d, below the current step %d: dropped, as wandb does"
                            % (step, self._step), {"step": step, "current_step": self._step})

    def _convert(self, data) -> Optional[dict]:
        """The slow path: a row of plain values. Nested dicts become
        `a.b` keys, 0-d arrays and tensors numbers, media files under
        media/; what cannot be kept is named once."""
        if not isinstance(data, collections.abc.Mapping):
            _once("wandb.log() wants a dict, got %s; ignored" % type(data).__name__)
            return None
        out: dict = {}
        self._flatten(data, "", out)
        return out

    def _flatten(self, data, prefix: str, out: dict) -> None:
        for key, value in data.items():
            key = prefix + (key if isinstance(key, str) else str(key))
            cls = value.__class__
            if cls in _PLAIN:
                out[key] = value
            elif isinstance(value, collections.abc.Mapping):
                self._flatten(value, key + ".", out)
            elif isinstance(value, numbers.Number):
                if isinstance(value, numbers.Real):
                    _PLAIN.add(cls)  # numpy scalars: the fast path from now on
                out[key] = value
            elif isinstance(value, _media._Media):
                self._save_media(key, [value])
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, _media._Media) for v in value):
                self._save_media(key, list(value))
            elif hasattr(value, "item") and (getattr(value, "shape", None) in ((), (1,)) or _numel(value) == 1):
                try:
                    out[key] = value.item()  # torch and numpy 0-d: the value now, not later
                except Exception:
                    self._unkept(key, value)
            elif isinstance(value, (list, tuple)) or hasattr(value, "shape"):
                try:
                    self._save_media(key, [_media.Histogram(value)])
                except Exception:
                    self._unkept(key, value)
            elif isinstance(value, str):
                out[key] = value  # the writer names it once; the summary keeps it
            elif value is None:
                continue
            else:
                self._unkept(key, value)

    def _unkept(self, key: str, value) -> None:
        if key not in self._media_seen:
            self._media_seen.add(key)
            message = "wandb.log() value of %r (%s) is not recorded" % (key, type(value).__name__)
            _once(message)
            self._lm._event("warning", message, {"key": key})

    def _save_media(self, key: str, values: list) -> None:
        folder = os.path.join(self._lm.dir, "media", _media._safe_name(key))
        kinds = sorted({v._kind for v in values})
        try:
            os.makedirs(folder, exist_ok=True)
            written = []
            for i, value in enumerate(values):
                step = self._row_step
                stem = os.path.join(folder, "%d" % step if len(values) == 1 else "%d-%d" % (step, i))
                path = value._write(stem)
                if path is not None:
                    written.append(os.path.relpath(path, self._lm.dir))
        except Exception as exc:
            written = []
            _once("cannot save media %r: %r" % (key, exc))
        if key not in self._media_seen:
            self._media_seen.add(key)
            if written:
                message = "%s %r saved under %s/" % ("/".join(kinds), key, os.path.dirname(written[0]))
            else:
                message = "%s %r counted, not saved" % ("/".join(kinds), key)
            self._lm._event("info", message, {"key": key, "kind": kinds, "files": written})
        with self._fold_lock:
            self._last[key] = {"_type": kinds[0], "files": written, "count": len(values)}

    # -- metric definitions and the summary -------------------------------------

    def define_metric(self, name, step_metric=None, step_sync=None, hidden=None, summary=None, goal=None,
                      overwrite=None, **_ignored) -> _Metric:
        """Record how a key (or a glob such as "train/*") is shown: its x
        axis (step_metric), its summary (min, max, mean, last, best...),
        its goal; labmate's metrics, plot and dashboard use the x axis."""
        if isinstance(step_metric, _Metric):
            step_metric = step_metric.name
        metric = _Metric(str(name), step_metric, step_sync, hidden, summary, goal)
        if self._lm is None or self._finished:
            return metric
        record: dict = {"t": "define", "time": _now(), "metric": str(name)}
        if step_metric is not None:
            record["step_metric"] = str(step_metric)
        if step_sync is not None:
            record["step_sync"] = bool(step_sync)
        if hidden is not None:
            record["hidden"] = bool(hidden)
        if summary is not None:
            record["summary"] = str(summary)
            kinds = [k.strip().lower() for k in str(summary).split(",") if k.strip()]
            unknown = [k for k in kinds if k not in _SUMMARY_KINDS]
            if unknown:
                termwarn("define_metric(summary=%r): unknown %s" % (summary, ", ".join(unknown)), repeat=False)
            with self._fold_lock:  # the flusher reads the rules
                self._rules[str(name)] = [k for k in kinds if k in _SUMMARY_KINDS]
                self._rule_of.clear()
        if goal is not None:
            record["goal"] = str(goal)
        self._metrics[str(name)] = metric
        self._lm._record(record)
        return metric

    def _kinds(self, key: str):
        found = self._rule_of.get(key, False)
        if found is False:
            found = self._rules.get(key)
            if found is None:
                for pattern, kinds in reversed(list(self._rules.items())):
                    if "*" in pattern and fnmatch.fnmatchcase(key, pattern):
                        found = kinds
                        break
            self._rule_of[key] = found
        return found

    def _aggregate(self, row: dict) -> None:
        for key, value in row.items():
            kinds = self._kinds(key)
            if not kinds:
                continue
            number = _metric_float(value)
            if number is None or math.isnan(number):
                continue
            agg = self._aggregates.get(key)
            if agg is None:
                agg = self._aggregates[key] = {"min": number, "max": number, "sum": 0.0, "n": 0, "first": number}
            agg["min"] = min(agg["min"], number)
            agg["max"] = max(agg["max"], number)
            agg["sum"] += number
            agg["n"] += 1

    def _auto_summary(self) -> dict:
        """Each logged key's summary value: its last value, or the
        aggregates its definition asks for."""
        if self._writer is not None and not self._finished:
            self._writer.flush()  # the queued rows reach _fold
        with self._fold_lock:
            last = list(self._last.items())
        out = {}
        for key, value in last:
            kinds = self._kinds(key) if self._rules else None
            if not kinds:
                out[key] = value
                continue
            if "none" in kinds:
                continue
            agg = self._aggregates.get(key)
            parts = {}
            for kind in kinds:
                if kind in ("last", "copy"):
                    parts["last"] = value
                elif agg is None:
                    continue
                elif kind == "mean":
                    parts["mean"] = agg["sum"] / agg["n"] if agg["n"] else None
                elif kind == "best":
                    goal = getattr(self._metrics.get(key), "goal", None) or "minimize"
                    parts["best"] = agg["max"] if str(goal).startswith("max") else agg["min"]
                elif kind in agg:
                    parts[kind] = agg[kind]
            out[key] = parts
        return out

    # -- records ---------------------------------------------------------------

    def _record_config(self, changes: dict) -> None:
        if self._lm is not None and not self._finished:
            self._lm.config.update(changes)

    def _record_summary(self, changes: dict) -> None:
        if self._lm is not None and not self._finished:
            self._lm.summary.update(changes)

    def _record_meta(self, **fields) -> None:
        if self._lm is not None and not self._finished:
            record = {"t": "meta", "time": _now()}
            record.update(fields)
            self._lm._record(record)

    # -- the rest of wandb's Run -----------------------------------------------

    def alert(self, title, text="", level=None, wait_duration=None) -> None:
        """A labmate alert event, which the lab's notifiers deliver."""
        level = getattr(level, "value", level) or "WARN"
        level = {"WARN": "warning", "ERROR": "error", "INFO": "info"}.get(str(level).upper(), str(level).lower())
        if self._lm is not None and not self._finished:
            self._lm.alert(str(title), str(text), level)

    def save(self, glob_str=None, base_path=None, policy="live") -> list:
        """Copy the matching files into the run folder's files/."""
        if glob_str is None or self._lm is None:
            return []
        glob_str = os.fspath(glob_str)
        base = os.path.abspath(base_path) if base_path is not None else os.path.dirname(os.path.abspath(glob_str))
        saved = []
        for path in _glob.glob(glob_str, recursive=True):
            if not os.path.isfile(path):
                continue
            rel = os.path.relpath(os.path.abspath(path), base)
            if rel.startswith(".."):
                rel = os.path.basename(path)
            target = os.path.join(self.dir, rel)
            if os.path.abspath(target) == os.path.abspath(path):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(path, target)
            saved.append(target)
        return saved

    def log_artifact(self, artifact_or_path, name=None, type=None, aliases=None, tags=None, **_ignored):
        """Record an artifact's files (hard links where the filesystem
        allows, else copies) and metadata under artifacts/<name>/vN/."""
        artifact = artifact_or_path
        if not isinstance(artifact, Artifact):
            path = os.fspath(artifact_or_path)
            artifact = Artifact(name or os.path.basename(path.rstrip("/")), type or "unspecified")
            (artifact.add_dir if os.path.isdir(path) else artifact.add_file)(path)
        artifact.aliases = list(aliases or [])
        if self._lm is None:
            return artifact
        root = os.path.join(self._lm.dir, "artifacts", _media._safe_name(artifact.name))
        os.makedirs(root, exist_ok=True)
        version = len([d for d in os.listdir(root) if d.startswith("v")])
        folder = os.path.join(root, "v%d" % version)
        os.makedirs(folder)
        files = []
        for inner, source in artifact._entries:
            target = os.path.normpath(os.path.join(folder, inner))
            if not target.startswith(folder + os.sep):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if isinstance(source, _media._Media):
                written = source._write(os.path.splitext(target)[0])
                if written:
                    files.append(os.path.relpath(written, folder))
                continue
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
            files.append(inner)
        manifest = {"name": artifact.name, "type": artifact.type, "version": "v%d" % version,
                    "aliases": artifact.aliases, "description": artifact.description,
                    "metadata": _friendly(artifact.metadata), "files": files, "references": artifact._references}
        with open(os.path.join(folder, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=2, default=str)
        artifact.version = "v%d" % version
        artifact._path = folder
        self._lm._event("info", "artifact %s:v%d (%s, %d files) recorded" % (artifact.name, version, artifact.type,
                                                                            len(files)),
                        {"artifact": artifact.name, "version": version, "type": artifact.type})
        return artifact

    def use_artifact(self, artifact_or_name, type=None, aliases=None, use_as=None, **_ignored):
        """An artifact recorded in this lab, found by name (`name:vN` or
        `name:latest`); its download() is the folder it is in."""
        if isinstance(artifact_or_name, Artifact):
            return artifact_or_name
        text = str(artifact_or_name).rsplit("/", 1)[-1]
        name, _, version = text.partition(":")
        artifact = Artifact(name, type or "unspecified")
        found = _find_artifact(self._lab, name, version)
        if found is None:
            termwarn("artifact %r is not in this lab" % text, repeat=False)
        else:
            artifact._path = found
            artifact.version = os.path.basename(found)
        return artifact

    def watch(self, *args, **kwargs) -> None:
        pass

    def unwatch(self, *args, **kwargs) -> None:
        pass

    def log_code(self, *args, **kwargs) -> None:
        pass  # labmate records the git commit and patch of every run

    def _label(self, *args, **kwargs) -> None:
        pass

    def mark_preempting(self) -> None:
        pass

    def log_model(self, path, name=None, aliases=None):
        return self.log_artifact(path, name=name, type="model", aliases=aliases)

    def use_model(self, name):
        return self.use_artifact(name).download()

    def link_model(self, *args, **kwargs) -> None:
        pass

    def link_artifact(self, *args, **kwargs) -> None:
        pass

    def status(self, *args, **kwargs):
        return None

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        from ._term import _unrecorded

        return _unrecorded("Run." + name)

    # -- the end -----------------------------------------------------------------

    def _close_records(self) -> None:
        """The pending row and the summary go to the writer."""
        if self._finished or self._lm is None:
            return
        if self._pending is not None:
            row, self._pending = self._pending, None
            self._commit(row)
        auto = {k: _summary_value(v) for k, v in self._auto_summary().items() if k not in self.summary._set}
        auto = {k: v for k, v in auto.items() if v is not None}
        if auto:
            self._lm.summary.update(auto)

    def finish(self, exit_code=None, quiet=None) -> None:
        """End the run: `finished` for exit code None or 0, else `failed`."""
        if self._finished:
            return
        self._close_records()
        self._finished = True
        if self._lm is not None:
            self._lm.finish(exit_code)
        if self._on_finish is not None:
            self._on_finish(self)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.finish()
        else:
            self._close_records()
            self._finished = True
            if self._lm is not None:
                self._lm._end_by_exception(exc_type, exc, None)
            if self._on_finish is not None:
                self._on_finish(self)
        return False


class RunDisabled(Run):
    """The run of ``mode="disabled"``: accepts everything, records nothing."""

    disabled = True

    def __init__(self, config=None, **fields):
        super().__init__(None, config=_parse_config(config), **fields)

    def log(self, data, step=None, commit=None, sync=None) -> None:
        pass

    def _record_config(self, changes: dict) -> None:
        pass

    def _record_summary(self, changes: dict) -> None:
        pass

    def _record_meta(self, **fields) -> None:
        pass

    def save(self, *args, **kwargs) -> list:
        return []

    def log_artifact(self, artifact_or_path, *args, **kwargs):
        return artifact_or_path if isinstance(artifact_or_path, Artifact) else Artifact(str(artifact_or_path))

    def alert(self, *args, **kwargs) -> None:
        pass

    def _close_records(self) -> None:
        pass


def _numel(value) -> int:
    try:
        return int(value.numel())
    except Exception:
        return -1


def _summary_value(value):
    """A summary value as JSON data: numbers, text, lists and dicts of them."""
    if isinstance(value, dict):
        return {k: _summary_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_summary_value(v) for v in value]
    if value is None or value.__class__ in (str, bool, int, float):
        return value
    number = _metric_float(value)
    return number if number is not None else str(value)


def _find_artifact(lab: Optional[str], name: str, version: str) -> Optional[str]:
    """The folder of artifact `name` (version vN, or the newest) in the lab."""
    if not lab:
        return None
    runs = os.path.join(lab, "runs")
    best = None
    try:
        run_ids = os.listdir(runs)
    except OSError:
        return None
    safe = _media._safe_name(name)
    for run_id in run_ids:
        root = os.path.join(runs, run_id, "artifacts", safe)
        if not os.path.isdir(root):
            continue
        for v in os.listdir(root):
            path = os.path.join(root, v)
            if version and version != "latest" and v != version:
                continue
            mtime = os.path.getmtime(path)
            if best is None or mtime > best[0]:
                best = (mtime, path)
    return best[1] if best else None
