"""labmate's Python client: record a training script's metrics into a lab.

This package owns everything the Python side writes to a lab, following the
on-disk contract in docs/FORMAT.md (format version 2; it reads labs of
version 1 and marks them version 2 before it writes its first batch):

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
interval with a single write, the logged points as ``batch`` records;
``finish()`` and the ``atexit`` handler flush synchronously. Config,
summary, meta and event records travel through the same queue, so the file
keeps the order in which the script made them.

Logging never raises inside the flusher: a value that is not a number is
dropped with a ``warning`` event, and I/O errors become one line on stderr.

The package is stdlib-only, so that it runs wherever a script does (the
``labmate`` binary's demo embeds it):

* ``_records``: record encoding (lines, batches, numbers, NaN/Inf);
* ``_writer``: the queue, the flusher thread, ``client-<pid>.jsonl``;
* ``_rundir``: the lab, run ids, the run folder, git provenance, the
  recorded environment;
* ``_run``: the ``Run``, its config and summary, how it ends;
* this module: the public functions, the current run, spans, and the
  process hooks that decide how a run ends.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import threading
from time import perf_counter as _perf_counter
from typing import Any, Iterable, Mapping, Optional

from . import _run
from ._records import _as_dict, _now
from ._rundir import FORMAT, LabmateError, _create_run_folder, _find_lab, _supervised_lab
from ._run import Run
from ._writer import _warn

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


# --------------------------------------------------------------------------
# Module state and the public functions

_current: Optional[Run] = None
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
    # Each tag once, in the order given, as the supervisor records them.
    tag_list = list(dict.fromkeys(str(tag) for tag in tags)) if tags is not None else []
    name = str(name) if name is not None else None
    config_dict = _as_dict(config, "config")
    with _run._state_lock:
        if _current is not None:
            _current.finish()
        _install_hooks()
        supervised_dir = os.environ.get("LABMATE_RUN_DIR")
        if supervised_dir:
            run = _join_supervised_run(supervised_dir, name, tag_list, config_dict)
        else:
            lab = _find_lab(dir)
            run_id, run_dir, lock_fd = _create_run_folder(lab, name, tag_list, config_dict)
            run = Run(run_id, name, tag_list, run_dir, config_dict, lock_fd, _forget, lab)
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
        _forget,
        _supervised_lab(run_dir),
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


def _forget(run: Run) -> None:
    """A run that ends is no longer the current one (called as it ends)."""
    global _current
    if _current is run:
        _current = None


def _active_run() -> Run:
    """The current run; one is started as by init() when there is none."""
    run = _current
    if run is None:
        with _run._state_lock:
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
    with _run._state_lock:
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
    _run._state_lock = threading.RLock()  # another thread may have held it
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
