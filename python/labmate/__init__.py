"""labmate's Python client: record a training script's metrics into a lab.

This module owns everything the Python side writes to a lab, following the
on-disk contract in docs/FORMAT.md (format version 1):

* Standalone (no ``LABMATE_RUN_DIR``): it finds or creates the lab, creates
  the run folder (``run.json``, ``patch.diff``, ``lock``) under a temporary
  name and renames it into place, holds the run's ``flock`` for the life of
  the process, and writes the ``start`` and ``end`` records.
* Under the ``labmate`` supervisor (``LABMATE_RUN_DIR`` set): the supervisor
  owns the run; the client only adds records.

In both modes the process appends its records to its own
``<run dir>/client-<pid>.jsonl`` (one writer per file).

``log()`` is the hot path: it only queues ``(step, time, dict(data))`` on a
deque. A daemon thread serialises and appends the queue once per flush
interval with a single write; ``finish()`` and the ``atexit`` handler flush
synchronously. Config, summary, meta and event records travel through the
same queue, so the file keeps the order in which the script made them.

Logging never raises inside the flusher: a value that is not a number is
dropped with a ``warning`` event, and I/O errors become one line on stderr.
The module is deliberately a single stdlib-only file: the ``labmate`` binary
embeds it.
"""

from __future__ import annotations

import atexit
import collections
import collections.abc
import errno
import fcntl
import functools
import getpass
import json
import math
import operator
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from itertools import chain, groupby, repeat, starmap
from typing import Any, Iterable, Mapping, Optional
from time import perf_counter as _perf_counter

__version__ = "0.1.0"

__all__ = [
    "FORMAT",
    "LabmateError",
    "Run",
    "alert",
    "finish",
    "init",
    "log",
    "span",
]

FORMAT = 1
"""The lab format version this client reads and writes."""

_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
_ID_EPOCH = 1704067200  # 2024-01-01T00:00:00Z

# Above this many queued records log() flushes inline, so memory stays flat
# however fast the script logs: about 20 MB at most with 10 metrics a call.
_MAX_QUEUED = 20_000
_CHUNK = 4096  # records encoded at a time within one flush
_MAX_IOV = 1024  # buffers one writev() takes (IOV_MAX on Linux)
_DEFAULT_FLUSH_INTERVAL = 1.0

_ENV_KEPT = ("CUDA_VISIBLE_DEVICES", "PYTHONPATH")
_ENV_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY")


_now = time.time


class LabmateError(Exception):
    """The lab or the run cannot be used (unknown format, bad folder, ...)."""


# --------------------------------------------------------------------------
# JSON encoding


# Everything but the log fast path goes through _jsonable() then this.
_encode_plain = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

# Log records are formatted with bytes %-templates, one per set of metric
# names, rather than with the json module: float formatting is most of the
# cost of a flush, and '%.17g' writes any finite double exactly (17
# significant digits always round-trip) at about 60% of the cost of the
# repr() that json uses. Time is written to the microsecond.
# Steps are signed 64-bit integers on disk (docs/FORMAT.md).
_STEP_MIN, _STEP_MAX = -(2**63), 2**63 - 1
_LOG_PREFIX = b'{"t":"log","step":%d,"time":%.6f,"data":'
_LOG_LINE = _LOG_PREFIX + b"%s}\n"

_step_time_of = operator.itemgetter(0, 1)  # of a queued (step, time, data)
_data_of = operator.itemgetter(2)


def _log_template(keys: tuple) -> bytes:
    """The line template for one set of metric names, e.g.
    {"t":"log","step":%d,"time":%.6f,"data":{"loss":%.17g,"acc":%.17g}}"""
    fields = b",".join(
        _encode_plain(key if isinstance(key, str) else str(key)).encode().replace(b"%", b"%%")
        + b":%.17g"
        for key in keys
    )
    return _LOG_PREFIX + b"{" + fields + b"}}\n"


_MAX_EXACT_INT = 2**53


def _finite_or_string(value: float):
    """A float as JSON: itself when finite, else the documented string."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _metric_value(value: Any):
    """A metric value as JSON (int, float or a non-finite string), or None
    when it is not a number."""
    if value is None or isinstance(value, (str, bytes, bytearray)):
        return None
    try:
        integer = int(operator.index(value))  # bools, numpy and torch integers
    except Exception:
        pass
    else:
        if -_MAX_EXACT_INT <= integer <= _MAX_EXACT_INT:
            return integer
        # Readers hold doubles: a larger integer becomes the nearest one.
        try:
            return float(integer)
        except OverflowError:
            return "Infinity" if integer > 0 else "-Infinity"
    try:
        return _finite_or_string(float(value))
    except Exception:
        return None


def _jsonable(value: Any, depth: int = 0):
    """Any value as plain JSON data for config, summary and event records:
    non-finite floats become the documented strings, array-likes become
    lists, anything else unknown becomes its str()."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _finite_or_string(float(value))
    if depth < 32:  # deep or cyclic structures end up as their str()
        if isinstance(value, collections.abc.Mapping):
            return {
                (k if isinstance(k, str) else str(k)): _jsonable(v, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple, set, frozenset)):
            return [_jsonable(v, depth + 1) for v in value]
        tolist = getattr(value, "tolist", None)  # numpy values, torch tensors
        if callable(tolist):
            try:
                return _jsonable(tolist(), depth + 1)
            except Exception:
                pass
    return str(value)


def _record_line(record: dict) -> bytes:
    return (_encode_plain(_jsonable(record)) + "\n").encode()


def _event_line(when: float, kind: str, message: str, data: Optional[dict] = None) -> bytes:
    record = {"t": "event", "time": when, "kind": kind, "message": message}
    if data is not None:
        record["data"] = data
    return _record_line(record)


def _warn(message: str) -> None:
    """One line on stderr; the client never prints to stdout."""
    try:
        sys.stderr.write("labmate: warning: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


def _as_dict(value: Any, what: str) -> dict:
    """A mapping, key/value pairs or an argparse.Namespace as a plain dict
    with string keys."""
    if value is None:
        return {}
    if not isinstance(value, collections.abc.Mapping):
        try:
            value = dict(value)
        except (TypeError, ValueError):
            if not hasattr(value, "__dict__"):
                raise TypeError(
                    "labmate: %s must be a mapping, not %s" % (what, type(value).__name__)
                ) from None
            value = vars(value)
    return {(k if isinstance(k, str) else str(k)): v for k, v in value.items()}


# --------------------------------------------------------------------------
# The writer: queue, flusher thread, client-<pid>.jsonl


def _flush_interval() -> float:
    raw = os.environ.get("LABMATE_FLUSH_INTERVAL")
    if not raw:
        return _DEFAULT_FLUSH_INTERVAL
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        _warn("ignoring LABMATE_FLUSH_INTERVAL=%r (want seconds > 0)" % raw)
        return _DEFAULT_FLUSH_INTERVAL
    return max(value, 0.001)


class _Writer:
    """Owns this process's client-<pid>.jsonl in one run folder: the record
    queue, the flusher thread, and the file (only ever appended to)."""

    def __init__(self, run_dir: str):
        self.queue: collections.deque = collections.deque()
        self._run_dir = run_dir
        self._interval = _flush_interval()
        self._templates: dict = {}  # metric names -> log line template
        self._warned_keys: set = set()
        self._write_failed = False
        self._start()

    def _start(self) -> None:
        self._path = os.path.join(self._run_dir, "client-%d.jsonl" % os.getpid())
        self._file = None
        self._needs_newline = False
        self._lock = threading.Lock()  # one flush at a time, in file order
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="labmate-flusher", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> None:
        """Write everything queued so far with one system call. Never raises."""
        try:
            with self._lock:
                queue = self.queue
                count = len(queue)  # appends may go on meanwhile; they wait
                if not count:
                    return
                chunks: list = []
                while count:
                    # Chunk by chunk, so the queued records are freed while
                    # their lines are made.
                    size = min(count, _CHUNK)
                    count -= size
                    self._encode(list(starmap(queue.popleft, repeat((), size))), chunks.append)
                self._write(chunks)
        except Exception as exc:  # a bug must not stop the training script
            _warn("flushing records failed: %r" % (exc,))

    # Log records are encoded in bulk: records with the same metric names
    # share one template, and a whole run of them is checked and formatted
    # by a few C-level calls instead of a Python loop per record.

    def _encode(self, items: list, add) -> None:
        """Encode queued items in order: log tuples, and the other records
        (config, summary, events...) that are queued already encoded."""
        kinds = list(map(type, items))
        start = 0
        while start < len(items):
            try:
                stop = kinds.index(bytes, start)
            except ValueError:
                stop = len(items)
            if stop > start:
                logs = items[start:stop]
                # Most often every record has the names of the first one.
                if not self._add_same_names(tuple(logs[0][2]), logs, add):
                    names = list(map(tuple, map(_data_of, logs)))
                    groups = [(keys, len(list(same))) for keys, same in groupby(names)]
                    first = 0
                    for keys, size in groups:
                        group = logs[first:first + size]
                        # One group of names failed above for its values.
                        if len(groups) == 1 or not self._add_same_names(keys, group, add):
                            self._add_one_by_one(group, add)
                        first += size
            if stop < len(items):
                add(items[stop])
            start = stop + 1

    def _template(self, keys: tuple):
        """(line template, getter of the values in template order)."""
        found = self._templates.get(keys)
        if found is None:
            if len(self._templates) >= 1024:  # names that change every step
                self._templates.clear()
            if len(keys) > 1:
                getter = operator.itemgetter(*keys)
            else:  # itemgetter of one key returns the bare value, not a tuple
                getter = lambda data: tuple(data[key] for key in keys)  # noqa: E731
            found = self._templates[keys] = (_log_template(keys), getter)
        return found

    def _add_same_names(self, keys: tuple, group: list, add) -> bool:
        """Encode a group whose records all have exactly these metric names
        (in any order) and only finite numbers; False, having added nothing,
        when they do not."""
        template, getter = self._template(keys)
        datas = list(map(_data_of, group))
        try:
            # Same size and every name present: the same names.
            if list(map(len, datas)).count(len(keys)) != len(datas):
                return False
            # step, time, values..., step, time, values...
            flat = tuple(chain.from_iterable(chain.from_iterable(
                zip(map(_step_time_of, group), map(getter, datas))
            )))
            # One C loop checks every value: the sum raises for a value that
            # is not a number and is NaN when one is NaN or infinite.
            total = sum(flat)
            if total - total == 0:
                add((template * len(group)) % flat)
                return True
        except Exception:
            pass  # a missing name, a value that is not a number: see below
        if len(group) > 1:
            return False
        step, t, data = group[0]
        self._add_slow(step, t, data, add)
        return True

    def _add_one_by_one(self, group: list, add) -> None:
        for item in group:
            self._add_same_names(tuple(item[2]), [item], add)

    def _add_slow(self, step: int, t: float, data: dict, add) -> None:
        """Encode one log record value by value: non-finite values as the
        documented strings, non-numbers dropped with a warning event."""
        clean = {}
        dropped = []
        for key, value in data.items():
            if not isinstance(key, str):
                key = str(key)
            number = _metric_value(value)
            if number is None:
                dropped.append(key)
                continue
            clean[key] = number
        add(_LOG_LINE % (step, t, _encode_plain(clean).encode()))
        new = [key for key in dropped if key not in self._warned_keys]
        if new:
            self._warned_keys.update(new)
            message = "dropped non-numeric values of %s at step %d (later drops of %s are not reported)" % (
                ", ".join(repr(k) for k in new),
                step,
                "this key" if len(new) == 1 else "these keys",
            )
            # Stamped with the point's time: it sits right after that point.
            add(_event_line(t, "warning", message, {"keys": new, "step": step}))
            _warn(message)

    def _write(self, chunks: list) -> None:
        """Append the chunks with one system call (writev: no joined copy)."""
        try:
            if self._file is None:
                self._open()
            if self._needs_newline:
                # An earlier failed write may have left a torn line: end it
                # so that only that record is lost, not the next one too.
                chunks.insert(0, b"\n")
                self._needs_newline = False
            if len(chunks) > _MAX_IOV:
                chunks = [b"".join(chunks)]
            fd = self._file.fileno()
            written = os.writev(fd, chunks)
            total = sum(map(len, chunks))
            if written < total:  # a short write (signal, full disk): finish it
                view = memoryview(b"".join(chunks))[written:]
                while view:
                    view = view[os.write(fd, view):]
        except Exception as exc:
            self._close_file()
            if not self._write_failed:
                self._write_failed = True
                _warn("cannot write %s (%s); records are being lost" % (self._path, exc))

    def _open(self) -> None:
        # Unbuffered: each write goes straight to the OS (no fsync), and a
        # forked child has no buffered copy of the parent's bytes to repeat.
        self._file = open(self._path, "ab", buffering=0)
        size = os.fstat(self._file.fileno()).st_size
        if size:
            with open(self._path, "rb") as tail:
                tail.seek(size - 1)
                self._needs_newline = tail.read(1) != b"\n"

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except Exception:
                pass
            self._file = None

    def close(self) -> None:
        """Stop the flusher, write what is left, close the file."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self.flush()
        self._close_file()

    def after_fork_in_child(self) -> None:
        """A forked child must not write the parent's file nor its queued
        records: it starts over with its own client-<pid>.jsonl."""
        self.queue.clear()
        self._close_file()
        self._start()


# --------------------------------------------------------------------------
# The lab and the run folder


def _write_new_file(path: str, data: bytes) -> None:
    """Create path with data atomically, unless it already exists."""
    if os.path.exists(path):
        return
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _find_lab(dir: Optional[str] = None) -> str:
    """The lab folder to use, created as FORMAT.md says when missing."""
    if dir is not None:
        lab = os.path.join(os.path.abspath(dir), ".labmate")
    elif os.environ.get("LABMATE_DIR"):
        lab = os.path.abspath(os.environ["LABMATE_DIR"])
    else:
        here = os.getcwd()
        folder = here
        while True:
            if os.path.isfile(os.path.join(folder, ".labmate", "lab.json")):
                lab = os.path.join(folder, ".labmate")
                break
            parent = os.path.dirname(folder)
            if parent == folder:
                lab = os.path.join(here, ".labmate")
                break
            folder = parent
    marker = os.path.join(lab, "lab.json")
    if not os.path.exists(marker):
        os.makedirs(os.path.join(lab, "runs"), exist_ok=True)
        _write_new_file(os.path.join(lab, ".gitignore"), b"*\n")
        # lab.json last: it is what marks the folder as a lab.
        _write_new_file(marker, b'{"format": 1}\n')
    try:
        with open(marker, "rb") as f:
            version = json.loads(f.read().decode("utf-8")).get("format")
    except (OSError, ValueError, AttributeError) as exc:
        raise LabmateError("cannot read the lab marker %s: %s" % (marker, exc)) from None
    if type(version) is not int or version != FORMAT:
        raise LabmateError(
            "the lab %s has format %r; this labmate client knows format %d only"
            % (lab, version, FORMAT)
        )
    os.makedirs(os.path.join(lab, "runs"), exist_ok=True)
    return lab


def _new_run_id(now: float) -> str:
    seconds = max(0, int(now) - _ID_EPOCH)
    random_bits = secrets.randbits(20)
    chars = [_ID_ALPHABET[(seconds >> shift) & 31] for shift in (25, 20, 15, 10, 5, 0)]
    chars += [_ID_ALPHABET[(random_bits >> shift) & 31] for shift in (15, 10, 5, 0)]
    return "r-" + "".join(chars)


def _git(args: list, cwd: str) -> Optional[bytes]:
    """git's stdout, or None when git is missing or the command fails."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
    try:
        done = subprocess.run(
            ["git"] + args,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_provenance(cwd: str):
    """(git object for run.json or None, patch bytes or None)."""
    top = _git(["rev-parse", "--show-toplevel"], cwd)
    if top is None:
        return None, None
    top = os.fsdecode(top.rstrip(b"\n"))
    commit = _git(["rev-parse", "--verify", "-q", "HEAD"], top)
    branch = _git(["symbolic-ref", "--short", "-q", "HEAD"], top)
    if commit is not None:
        # The options pin what user config could change (colour, external
        # diff tools, textconv, prefixes) so the patch applies with git apply.
        patch = _git(
            ["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff",
             "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/"],
            top,
        )
        dirty = bool(patch)
    else:  # no commit yet: every tracked file is a change, and there is no patch
        patch = None
        dirty = bool(_git(["ls-files", "-z"], top))
    untracked = _git(["ls-files", "-z", "--others", "--exclude-standard"], top) or b""
    info = {
        "commit": commit.decode().strip() if commit else None,
        "branch": branch.decode().strip() if branch else None,
        "dirty": dirty,
        "untracked": [os.fsdecode(p) for p in untracked.split(b"\0") if p],
        "patch_bytes": len(patch) if patch else 0,
    }
    return info, (patch or None)


def _env_subset() -> dict:
    return {
        name: value
        for name, value in os.environ.items()
        if (name in _ENV_KEPT or name.startswith("LABMATE_"))
        and not any(word in name.upper() for word in _ENV_SECRET_WORDS)
    }


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid())


def _create_run_folder(lab: str, name, tags: list, config: dict):
    """Create runs/<id> per FORMAT.md and take its lock.

    Returns (id, folder, lock fd). The lock is taken before the rename, so a
    reader never sees the run without a live owner."""
    runs = os.path.join(lab, "runs")
    cwd = os.getcwd()
    git, patch = _git_provenance(cwd)
    for _attempt in range(50):
        created_at = _now()
        run_id = _new_run_id(created_at)
        # Per process, so that two writers drawing the same id never share it.
        tmp = os.path.join(runs, ".tmp-%s-%d" % (run_id, os.getpid()))
        final = os.path.join(runs, run_id)
        if os.path.exists(final):
            continue
        try:
            os.mkdir(tmp)
        except FileExistsError:
            continue
        try:
            lock_fd = _fill_run_folder(tmp, final, run_id, created_at, cwd, name, tags, config, git, patch)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                continue  # the id was taken in the meantime: draw another
            raise
        return run_id, final, lock_fd
    raise LabmateError("could not find a free run id in %s" % runs)


def _fill_run_folder(tmp, final, run_id, created_at, cwd, name, tags, config, git, patch):
    """Write run.json, the patch and the lock into `tmp`, then rename it to
    `final`. Returns the lock fd; on failure nothing is left behind."""
    lock_fd = None
    try:
        doc = {
            "format": FORMAT,
            "id": run_id,
            "name": name,
            "tags": tags,
            "command": [],  # FORMAT.md: [] for a client-made run
            "cwd": cwd,
            "host": socket.gethostname(),
            "user": _user(),
            "created_at": created_at,
            "config": _jsonable(config),
            "env": _env_subset(),
            "git": git,
            "origin": "client",
        }
        with open(os.path.join(tmp, "run.json"), "w", encoding="utf-8") as f:
            f.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
        if patch:
            with open(os.path.join(tmp, "patch.diff"), "wb") as f:
                f.write(patch)
        lock_fd = os.open(os.path.join(tmp, "lock"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        os.rename(tmp, final)
    except BaseException:
        if lock_fd is not None:
            os.close(lock_fd)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return lock_fd


# --------------------------------------------------------------------------
# The run


class _RecordedDict(collections.abc.MutableMapping):
    """A dict whose every change is written as a `config` or `summary` record.

    Keys cannot be removed: the format merges records key by key and has no
    way to say "gone"."""

    def __init__(self, run: "Run", kind: str, initial: Optional[dict] = None):
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_data", dict(initial or {}))

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __setitem__(self, key, value) -> None:
        self.update({key: value})

    def __delitem__(self, key) -> None:
        raise TypeError("labmate: %s keys cannot be removed; set the key to None instead" % self._kind)

    def update(self, other=None, /, **kwargs) -> None:  # type: ignore[override]
        """Set several keys with one record."""
        changes = _as_dict(other, self._kind)
        changes.update(kwargs)
        if not changes:
            return
        self._data.update(changes)
        self._run._record({"t": self._kind, "time": _now(), "data": changes})

    # run.config.lr reads and writes like run.config["lr"].
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self[name] = value


class Run:
    """One run. Get it from labmate.init(); use it directly or through the
    module-level functions, which act on the current run."""

    def __init__(self, run_id: str, name, tags: list, run_dir: str, config: dict, lock_fd):
        self.id: str = run_id
        self.name: Optional[str] = name
        self.tags: list = tags
        self.dir: str = run_dir
        # The owner created the run folder: it holds the lock and writes
        # start/end. Under the supervisor the supervisor owns the run.
        self._owner = lock_fd is not None
        self._lock_fd = lock_fd
        self._closed = False
        self._step = 0
        self._warned_closed = False
        self._writer = _Writer(run_dir)
        self._queue = self._writer.queue
        self.config = _RecordedDict(self, "config", config)
        self.summary = _RecordedDict(self, "summary")
        # Seconds spent in each span since the last log(): they go into the
        # next logged step as `span/<name>`.
        self._spans: dict = {}

    def __repr__(self) -> str:
        return "<labmate.Run %s name=%r dir=%r>" % (self.id, self.name, self.dir)

    # -- the hot path ------------------------------------------------------

    def log(self, data: Mapping[str, Any], step: Optional[int] = None) -> None:
        """Queue one point per metric at `step` (default: last step + 1)."""
        if self._closed:
            self._warn_closed("log")
            return
        if step is None:
            step = self._step
            # After the largest step (2**63 - 1), steps that count on stay at it.
            self._step = step + 1 if step < 9223372036854775807 else step
        elif step.__class__ is int and _STEP_MIN <= step < _STEP_MAX:
            self._step = step + 1
        else:
            step = self._checked_step(step)
            self._step = step + 1 if step < _STEP_MAX else step
        try:
            data = dict(data)
            if self._spans:
                for name, seconds in self._spans.items():
                    data["span/" + name] = seconds
                self._spans.clear()
            item = (step, _now(), data)
        except (TypeError, ValueError):
            self._event("warning", "log() wants a dict of metrics, got %s" % type(data).__name__)
            return
        queue = self._queue
        queue.append(item)
        if len(queue) > _MAX_QUEUED:
            self._writer.flush()

    def _checked_step(self, step) -> int:
        value = None
        try:
            value = operator.index(step)  # numpy and torch integers, bools
        except Exception:
            try:
                f = float(step)
                if f.is_integer():
                    value = int(f)
            except Exception:
                pass
        if value is None:
            why = "is not an integer"
        elif _STEP_MIN <= value <= _STEP_MAX:
            return value
        else:
            why = "is outside the signed 64-bit range"
        self._event("warning", "log() step %r %s; used %d" % (step, why, self._step))
        return self._step

    # -- other records -------------------------------------------------------

    def _record(self, record: dict) -> None:
        if self._closed:
            self._warn_closed(record.get("t", "record"))
            return
        try:
            line = _record_line(record)
        except Exception as exc:
            _warn("cannot encode a %s record: %r" % (record.get("t"), exc))
            return
        self._queue.append(line)

    def _event(self, kind: str, message: str, data: Optional[dict] = None) -> None:
        if self._closed:
            self._warn_closed("event")
            return
        self._queue.append(_event_line(_now(), kind, message, data))

    def _warn_closed(self, what: str) -> None:
        if not self._warned_closed:
            self._warned_closed = True
            _warn("run %s is finished; %s ignored" % (self.id, what))

    def alert(self, title: str, text: str = "", level: str = "warning") -> None:
        """Record an `alert` event (title, text, level)."""
        title = str(title)
        text = str(text) if text is not None else ""
        self._event(
            "alert",
            "%s: %s" % (title, text) if text else title,
            {"title": title, "text": text, "level": str(level).lower()},
        )

    def flush(self) -> None:
        """Write the queued records now."""
        self._writer.flush()

    # -- the end -------------------------------------------------------------

    def finish(self, exit_code: Optional[int] = None) -> None:
        """End the run: `finished` for exit code None or 0, else `failed`."""
        if exit_code is None or exit_code == 0:
            self._end("finished", 0)
            return
        try:
            code = int(exit_code)
        except (TypeError, ValueError):
            code = None
        self._end("failed", code)

    def _end(self, status: str, exit_code, signal_number=None, reason=None) -> None:
        global _current
        with _state_lock:
            if self._closed:
                return
            if self._owner:
                record = {
                    "t": "end",
                    "time": _now(),
                    "status": status,
                    "exit_code": exit_code,
                    "signal": signal_number,
                }
                if reason is not None:
                    record["reason"] = reason
                self._record(record)
            self._closed = True
            self._writer.close()
            if self._lock_fd is not None:
                # Only now: the end record is on disk before the lock frees.
                try:
                    os.close(self._lock_fd)
                except OSError:
                    pass
                self._lock_fd = None
            if _current is self:
                _current = None

    def _end_by_exception(self, exc_type, exc, exit_code) -> None:
        reason = exc_type.__name__
        if str(exc):
            reason += ": %s" % exc
        if issubclass(exc_type, KeyboardInterrupt):
            self._end("stopped", None, int(signal.SIGINT), reason)
        else:
            self._end("failed", exit_code, None, reason)

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.finish()
        else:
            # The process goes on (the exception may be caught further up),
            # so there is no exit code to record.
            self._end_by_exception(exc_type, exc, None)
        return False

    def _after_fork_in_child(self) -> None:
        """A forked child is not the owner: it must neither keep the lock
        (it would outlive a dead parent) nor write start/end records."""
        self._owner = False
        if self._lock_fd is not None:
            try:
                os.close(self._lock_fd)  # closes the child's copy only
            except OSError:
                pass
            self._lock_fd = None
        self._writer.after_fork_in_child()


# --------------------------------------------------------------------------
# Module state and the public functions

_current: Optional[Run] = None
_state_lock = threading.RLock()
_hooks_installed = False
_uncaught = None  # (type, value) of the exception that ends the script
_exit_status = None  # what the main thread passed to sys.exit()
_previous_excepthook = None
_original_exit = None


def init(
    name: Optional[str] = None,
    config: Optional[Mapping[str, Any]] = None,
    tags: Optional[Iterable[str]] = None,
    dir: Optional[str] = None,
) -> Run:
    """Start a run and make it the current one; finishes the current run first.

    Under the supervisor (LABMATE_RUN_DIR set) the run is the supervisor's:
    name and tags become a `meta` record, config a `config` record.
    Standalone, the run is created in the lab found from LABMATE_DIR or the
    working directory (created there if none), or in `<dir>/.labmate` when
    `dir` is given.
    """
    global _current
    if isinstance(tags, str):
        tags = [tags]
    tag_list = [str(tag) for tag in tags] if tags is not None else []
    name = str(name) if name is not None else None
    config_dict = _as_dict(config, "config")
    with _state_lock:
        if _current is not None:
            _current.finish()
        _install_hooks()
        supervised_dir = os.environ.get("LABMATE_RUN_DIR")
        if supervised_dir:
            run = _join_supervised_run(supervised_dir, name, tag_list, config_dict)
        else:
            lab = _find_lab(dir)
            run_id, run_dir, lock_fd = _create_run_folder(lab, name, tag_list, config_dict)
            run = Run(run_id, name, tag_list, run_dir, config_dict, lock_fd)
            run._record({"t": "start", "time": _now(), "pid": os.getpid()})
        # The records of init() are on disk when it returns.
        run.flush()
        _current = run
        return run


def _join_supervised_run(run_dir: str, name, tags: list, config: dict) -> Run:
    run_dir = os.path.abspath(run_dir)
    if not os.path.isdir(run_dir):
        raise LabmateError("LABMATE_RUN_DIR=%s is not a folder" % run_dir)
    launched: dict = {}
    try:  # read only: run.json belongs to the supervisor
        with open(os.path.join(run_dir, "run.json"), "rb") as f:
            launched = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        pass
    if not isinstance(launched, dict):
        launched = {}
    run_id = os.environ.get("LABMATE_RUN_ID") or launched.get("id") or os.path.basename(run_dir)
    launched_config = launched.get("config")
    launched_tags = launched.get("tags")
    all_tags = [str(t) for t in launched_tags] if isinstance(launched_tags, list) else []
    all_tags += [t for t in tags if t not in all_tags]
    run = Run(
        str(run_id),
        name if name is not None else launched.get("name"),
        all_tags,
        run_dir,
        launched_config if isinstance(launched_config, dict) else {},
        None,
    )
    if name is not None or tags:
        meta: dict = {"t": "meta", "time": _now()}
        if name is not None:
            meta["name"] = name
        if tags:
            meta["tags"] = tags
        run._record(meta)
    if config:
        run.config.update(config)
    return run


def _active_run() -> Run:
    """The current run; one is started as by init() when there is none."""
    run = _current
    if run is None:
        with _state_lock:
            run = _current if _current is not None else init()
    return run


def log(data: Mapping[str, Any], step: Optional[int] = None) -> None:
    """Record metrics at `step` (default: last step + 1, from 0).

    Costs a microsecond or two: the record is only queued. Starts a run as
    init() would when none is active."""
    run = _current
    if run is None:
        run = _active_run()
    run.log(data, step)


class _Span:
    """Times a block (`with labmate.span("forward"):`) or a function
    (`@labmate.span("forward")`). The seconds add up per step and are logged
    with the next log() call as the metric `span/<name>`."""

    __slots__ = ("name", "_starts")

    def __init__(self, name: str):
        self.name = name
        self._starts: list = []

    def __enter__(self):
        self._starts.append(_perf_counter())
        return self

    def __exit__(self, *exc) -> bool:
        elapsed = _perf_counter() - self._starts.pop()
        run = _current
        if run is None:
            run = _active_run()
        spans = run._spans
        spans[self.name] = spans.get(self.name, 0.0) + elapsed
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)

        return timed


_spans_by_name: dict = {}


def span(name: str) -> _Span:
    """A timer for `name`: `with labmate.span("optimizer"): ...` or as a
    decorator. Costs about a microsecond; `labmate profile RUN` reads the
    result."""
    s = _spans_by_name.get(name)
    if s is None:
        s = _spans_by_name[name] = _Span(str(name))
    return s


def alert(title: str, text: str = "", level: str = "warning") -> None:
    """Record an `alert` event on the current run."""
    _active_run().alert(title, text, level)


def finish(exit_code: Optional[int] = None) -> None:
    """Finish the current run, if any (see Run.finish)."""
    with _state_lock:
        run = _current
        if run is not None:
            run.finish(exit_code)


def __getattr__(name: str):
    # labmate.run / labmate.config / labmate.summary follow the current run.
    if name == "run":
        return _current
    if name in ("config", "summary"):
        return getattr(_current, name) if _current is not None else None
    raise AttributeError("module 'labmate' has no attribute %r" % name)


def __dir__():
    return sorted(list(globals()) + ["run", "config", "summary"])


# --------------------------------------------------------------------------
# Process hooks: how the script ends decides how the run ends


def _excepthook(exc_type, exc, tb) -> None:
    global _uncaught
    _uncaught = (exc_type, exc)
    (_previous_excepthook or sys.__excepthook__)(exc_type, exc, tb)


def _exit(status=None):
    global _exit_status
    if threading.current_thread() is threading.main_thread():
        _exit_status = status
    _original_exit(status)


def _exit_code(status) -> int:
    """The process exit code that sys.exit(status) gives."""
    if status is None:
        return 0
    if isinstance(status, int):
        return int(status)
    return 1


def _at_exit() -> None:
    run = _current
    if run is None:
        return
    try:
        if _uncaught is not None:
            run._end_by_exception(_uncaught[0], _uncaught[1], 1)
        else:
            run.finish(_exit_code(_exit_status))
    except Exception as exc:
        _warn("finishing run %s at exit failed: %r" % (run.id, exc))


def _after_fork_in_child() -> None:
    global _state_lock
    _state_lock = threading.RLock()  # another thread may have held it
    if _current is not None:
        _current._after_fork_in_child()


def _install_hooks() -> None:
    global _hooks_installed, _previous_excepthook, _original_exit
    if _hooks_installed:
        return
    _hooks_installed = True
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    # SystemExit never reaches excepthook: remember sys.exit()'s status.
    _original_exit = sys.exit
    sys.exit = _exit
    atexit.register(_at_exit)
    os.register_at_fork(after_in_child=_after_fork_in_child)
