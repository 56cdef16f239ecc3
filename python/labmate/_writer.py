"""The writer: one process's ``client-<pid>.jsonl`` in one run folder.

``log()`` only appends to the writer's queue. A daemon thread encodes and
appends the queue once per flush interval (``LABMATE_FLUSH_INTERVAL``) with
a single ``writev``; ``finish()`` and the exit hook flush synchronously. A
flush never raises: a bug or an I/O error becomes one line on stderr.
"""

from __future__ import annotations

import collections
import json
import operator
import os
import sys
import threading
from array import array
from itertools import groupby, repeat, starmap
from typing import Callable, Optional

from ._records import (
    _STEP_MAX,
    _STEP_MIN,
    _batch_line,
    _event_line,
    _key_json,
    _metric_float,
    _packed_doubles,
)

# Above this many queued records log() flushes inline, so memory stays flat
# however fast the script logs: about 20 MB at most with 10 metrics a call.
_MAX_QUEUED = 20_000
_CHUNK = 4096  # records encoded at a time within one flush; a batch holds at most this many steps
_MAX_IOV = 1024  # buffers one writev() takes (IOV_MAX on Linux)
_DEFAULT_FLUSH_INTERVAL = 1.0
# Metric names remembered (as sets, and one by one); past that many, the
# script makes new names all the time and the caches start over.
_MAX_NAME_SETS = 1024
_MAX_NAMES = 16_384
_FIRST, _SECOND, _THIRD = operator.itemgetter(0), operator.itemgetter(1), operator.itemgetter(2)

def _warn(message: str) -> None:
    """One line on stderr; the client never prints to stdout."""
    try:
        sys.stderr.write("labmate: warning: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


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
    queue, the flusher thread, and the file (only ever appended to).

    `before_batches`, when given, is called once before the first batch
    record is written (it marks the lab as format 2)."""

    def __init__(self, run_dir: str, before_batches: Optional[Callable[[], None]] = None):
        self.queue: collections.deque = collections.deque()
        self._run_dir = run_dir
        self._interval = _flush_interval()
        self._before_batches = before_batches
        # Called with each flushed block's point dicts, in order, before they
        # are encoded (the wandb stand-in keeps its summary so).
        self.on_points: Optional[Callable[[list], None]] = None
        self._names: dict = {}  # metric names as logged -> [(name as JSON, getter)], or None
        self._name_json: dict = {}  # one metric name as logged -> as JSON
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

    def _encode(self, items: list, add) -> None:
        """Encode queued items in order: each run of log tuples (step, time,
        data) as a batch record, and the other records (config, summary,
        events...) between them, which are queued already encoded."""
        kinds = list(map(type, items))
        start = 0
        while start < len(items):
            try:
                stop = kinds.index(bytes, start)
            except ValueError:
                stop = len(items)
            if stop > start:
                self._add_batches(items[start:stop], add)
            if stop < len(items):
                add(items[stop])
            start = stop + 1

    def _add_batches(self, logs: list, add) -> None:
        """Logged points as batch records, in order: one, unless two
        consecutive steps differ by more than a 64-bit `dstep` holds."""
        if self._before_batches is not None:
            before, self._before_batches = self._before_batches, None
            before()
        # Three passes of C code: zip(*logs) costs several times more.
        steps = list(map(_FIRST, logs))
        times = list(map(_SECOND, logs))
        datas = list(map(_THIRD, logs))
        if self.on_points is not None:
            self.on_points(datas)
        deltas = list(map(operator.sub, steps[1:], steps[:-1]))
        first = 0
        if deltas and (max(deltas) > _STEP_MAX or min(deltas) < _STEP_MIN):
            for i, delta in enumerate(deltas):
                if not _STEP_MIN <= delta <= _STEP_MAX:
                    end = i + 1
                    self._add_batch(steps[first:end], deltas[first:i], times[first:end], datas[first:end], add)
                    first = end
        if first:
            steps, deltas, times, datas = steps[first:], deltas[first:], times[first:], datas[first:]
        self._add_batch(steps, deltas, times, datas, add)

    def _add_batch(self, steps, deltas, times, datas, add) -> None:
        columns = self._same_names(datas)
        events: list = []
        if columns is None:
            columns = self._columns(steps, times, datas, events)
        add(_batch_line(steps, deltas, times, columns))
        for event in events:
            add(event)

    # The common case costs a few C-level calls per metric and block: every
    # point has the metric names of the first one, so an itemgetter per name
    # takes its values and struct checks and packs them at once.

    def _same_names(self, datas) -> Optional[list]:
        """The columns when every point has exactly the first one's metric
        names and only numbers; None when they do not."""
        keys = tuple(datas[0])
        found = self._names.get(keys, False)
        if found is False:
            if len(self._names) >= _MAX_NAME_SETS:
                self._names.clear()
            names = [_key_json(key) for key in keys]
            # Two keys written as one name (7 and "7") are merged point by point.
            found = None
            if len(set(names)) == len(names):
                found = list(zip(names, map(operator.itemgetter, keys)))
            self._names[keys] = found
        if found is None:
            return None
        # Same size and every name present: the same names.
        if list(map(len, datas)).count(len(found)) != len(datas):
            return None
        columns = []
        size = len(datas)
        try:
            for name, getter in found:
                columns.append((name, None, _packed_doubles(map(getter, datas), size)))
        except Exception:  # a missing name, a value that is not a number: see below
            return None
        return columns

    def _columns(self, steps, times, datas, events: list) -> list:
        """The columns of points with differing metric names, value by value:
        a name absent at a step has no value there (nothing is invented), and
        values that are not numbers are dropped with a warning event the
        first time a name has one."""
        columns: dict = {}  # name as JSON -> (positions, values)
        name_json = self._name_json
        if len(name_json) >= _MAX_NAMES:
            name_json.clear()
        dropped: list = []  # (position, name) of names dropped for the first time
        for position, data in enumerate(datas):
            for key, value in data.items():
                name = name_json.get(key)
                if name is None:
                    name = name_json[key] = _key_json(key)
                number = value if value.__class__ is float else _metric_float(value)
                if number is None:
                    if name not in self._warned_keys:
                        self._warned_keys.add(name)
                        dropped.append((position, name))
                    continue
                column = columns.get(name)
                if column is None:
                    columns[name] = ([position], [number])
                elif column[0][-1] == position:  # the same name twice in one point
                    column[1][-1] = number
                else:
                    column[0].append(position)
                    column[1].append(number)
        size = len(datas)
        found = [
            (name, None if len(at) == size else at, array("d", values))
            for name, (at, values) in columns.items()
        ]
        for position, same in groupby(dropped, operator.itemgetter(0)):
            self._warn_dropped(steps[position], times[position] / 1_000_000_000, [name for _, name in same], events)
        return found

    def _warn_dropped(self, step: int, when: float, names: list, events: list) -> None:
        keys = [json.loads(name) for name in names]
        message = "dropped non-numeric values of %s at step %d (later drops of %s are not reported)" % (
            ", ".join(repr(k) for k in keys),
            step,
            "this key" if len(keys) == 1 else "these keys",
        )
        # Stamped with the point's time, and right after its batch.
        events.append(_event_line(when, "warning", message, {"keys": keys, "step": step}))
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
