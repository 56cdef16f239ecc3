"""The run: the object that ``labmate.init()`` returns, its ``config`` and
``summary`` dicts, and how it ends.

A run queues its records on its writer in the order the script makes them;
``log()`` is the hot path and only appends ``(step, time, dict(data))``.
The run that created its own folder (standalone) holds the folder's lock
and writes ``start`` and ``end``; under the supervisor the run only adds
records.
"""

from __future__ import annotations

import collections.abc
import functools
import operator
import os
import signal
import threading
from typing import Any, Callable, Mapping, Optional

from ._records import _STEP_MAX, _STEP_MIN, _as_dict, _event_line, _now, _now_ns, _record_line
from ._rundir import _mark_format_2
from ._writer import _MAX_QUEUED, _Writer, _warn

# Held while a run ends and while the package changes its current run, so
# that a run ends once and the current run is never one that has ended.
# Replaced in a forked child, where another thread may have held it.
_state_lock = threading.RLock()


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

    def __init__(
        self,
        run_id: str,
        name,
        tags: list,
        run_dir: str,
        config: dict,
        lock_fd,
        on_end: Optional[Callable[["Run"], None]] = None,
        lab: Optional[str] = None,
    ):
        self.id: str = run_id
        self.name: Optional[str] = name
        self.tags: list = tags
        self.dir: str = run_dir
        # The owner created the run folder: it holds the lock and writes
        # start/end. Under the supervisor the supervisor owns the run.
        self._owner = lock_fd is not None
        self._lock_fd = lock_fd
        self._on_end = on_end  # the package forgets its current run
        self._closed = False
        self._step = 0
        self._warned_closed = False
        # The lab, when known, is marked as format 2 before the first batch.
        self._writer = _Writer(run_dir, functools.partial(_mark_format_2, lab) if lab else None)
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
            item = (step, _now_ns(), data)
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
            if self._on_end is not None:
                self._on_end(self)

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
