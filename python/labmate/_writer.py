"""The writer: one process's ``client-<pid>.jsonl`` in one run folder.

``log()`` only appends to the writer's queue. A daemon thread encodes and
appends the queue once per flush interval (``LABMATE_FLUSH_INTERVAL``) with
a single ``writev``; ``finish()`` and the exit hook flush synchronously. A
flush never raises: a bug or an I/O error becomes one line on stderr.
"""

from __future__ import annotations

import collections
import operator
import os
import sys
import threading
from itertools import chain, groupby, repeat, starmap

from ._records import _LOG_LINE, _encode_plain, _event_line, _log_template, _metric_value, _text

# Above this many queued records log() flushes inline, so memory stays flat
# however fast the script logs: about 20 MB at most with 10 metrics a call.
_MAX_QUEUED = 20_000
_CHUNK = 4096  # records encoded at a time within one flush
_MAX_IOV = 1024  # buffers one writev() takes (IOV_MAX on Linux)
_DEFAULT_FLUSH_INTERVAL = 1.0

_step_time_of = operator.itemgetter(0, 1)  # of a queued (step, time, data)
_data_of = operator.itemgetter(2)


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
            key = _text(key if isinstance(key, str) else str(key))
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
