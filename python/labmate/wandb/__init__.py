"""labmate's stand-in for wandb: training code written for wandb records
into a labmate run, unchanged.

``labmate run --wandb -- python train.py`` makes the script's ``import
wandb`` this module (a ``wandb`` package first on ``PYTHONPATH``); a script
can also ``import labmate.wandb as wandb``. Under ``labmate run`` the run is
the supervisor's; otherwise ``init()`` creates one in the nearest lab, as
``labmate.init()`` does. Nothing goes over the network.

* ``_run``: the ``Run``, its ``config`` and ``summary``, ``define_metric``,
  artifacts;
* ``_media``: ``Image``, ``Table``, ``Histogram``, ``Audio``, ``Video``,
  ``Html``, saved as files under the run folder;
* ``_api``: ``Api``, the read side (``runs``, ``run``, ``history``);
* ``_term``: wandb's terminal helpers and errors, and the harmless stand-in
  for everything else;
* ``sdk``, ``sdk.lib``, ``sdk.lib.config_util``, ``wandb_run``, ``util``,
  ``errors``, ``apis``: the module paths integrations import.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any, Optional, Sequence

import labmate as _labmate

from . import _media, _term
from ._api import Api
from ._media import Audio, Histogram, Html, Image, Table, Video
from ._run import Artifact, Config, Run, RunDisabled, Summary, _parse_config
from ._term import CommError, Error, UsageError, _unrecorded, termerror, termlog, termsetup, termwarn

__version__ = "0.21.0"
"""The wandb version integrations see (Lightning wants >= 0.12.10)."""

__all__ = [
    "Api", "Artifact", "Audio", "Config", "Error", "Histogram", "Html", "Image", "Run", "Settings",
    "Summary", "Table", "Video", "alert", "config", "define_metric", "finish", "init", "log", "login",
    "run", "save", "summary",
]

_SUBMODULE_NAMES = frozenset(("apis", "data_types", "env", "errors", "sdk", "util", "wandb_run", "_api", "_media",
                              "_run", "_term"))

_lock = threading.RLock()
_exit_hook = False


class _PreInit:
    """What ``wandb.log`` and friends are before ``init()``: calling them
    raises wandb's error, as wandb does."""

    def __init__(self, name: str):
        self._name = name

    def __call__(self, *args, **kwargs):
        raise Error("You must call wandb.init() before wandb.%s()" % self._name)

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        raise Error("You must call wandb.init() before wandb.%s.%s" % (self._name, key))

    def __getitem__(self, key):
        raise Error("You must call wandb.init() before wandb.%s[%r]" % (self._name, key))

    def __repr__(self) -> str:
        return "<wandb.%s before wandb.init()>" % self._name


_RUN_FUNCTIONS = ("log", "define_metric", "save", "watch", "unwatch", "alert", "log_artifact", "use_artifact",
                  "log_code", "mark_preempting", "log_model", "use_model", "link_model")

run: Optional[Run] = None


def _reset_globals() -> None:
    module = sys.modules[__name__]
    module.run = None
    module.config = _PreInit("config")
    module.summary = _PreInit("summary")
    for name in _RUN_FUNCTIONS:
        setattr(module, name, _PreInit(name))


def _bind_globals(current: Run) -> None:
    module = sys.modules[__name__]
    module.run = current
    module.config = current.config
    module.summary = current.summary
    for name in _RUN_FUNCTIONS:
        setattr(module, name, getattr(current, name))


_reset_globals()


class Settings:
    """wandb's settings: accepts any keyword; read back as attributes."""

    def __init__(self, *args, **kwargs):
        self.__dict__.update(kwargs)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def update(self, *args, **kwargs) -> None:
        for d in args:
            if isinstance(d, dict):
                self.__dict__.update(d)
        self.__dict__.update(kwargs)

    def copy(self):
        return Settings(**self.__dict__)


class AlertLevel:
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


def _env_list(name: str) -> Optional[list]:
    raw = os.environ.get(name)
    if not raw:
        return None
    return [t.strip() for t in raw.split(",") if t.strip()]


def _disabled(mode: Optional[str]) -> bool:
    mode = mode or os.environ.get("WANDB_MODE")
    if mode is not None and str(mode).lower() == "disabled":
        return True
    return os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true", "yes")


def init(
    project: Optional[str] = None,
    entity: Optional[str] = None,
    config: Any = None,
    name: Optional[str] = None,
    notes: Optional[str] = None,
    tags: Optional[Sequence[str]] = None,
    group: Optional[str] = None,
    job_type: Optional[str] = None,
    id: Optional[str] = None,
    dir: Any = None,
    mode: Optional[str] = None,
    resume: Any = None,
    reinit: Any = None,
    settings: Any = None,
    anonymous: Optional[str] = None,
    sync_tensorboard: Optional[bool] = None,
    config_exclude_keys: Optional[Sequence[str]] = None,
    config_include_keys: Optional[Sequence[str]] = None,
    **_other: Any,
) -> Run:
    """Start a run, with wandb's signature. Under ``labmate run`` it is
    the supervisor's run (a name, tags or config given to ``labmate run``
    win); else a new run in the nearest lab. ``mode="disabled"`` records
    nothing. An active run is returned again unless ``reinit`` asks for a
    new one."""
    with _lock:
        current = sys.modules[__name__].run
        if current is not None:
            if not reinit or reinit in ("return_previous", "default"):
                if config is not None:
                    current.config.update(_parse_config(config), allow_val_change=True)
                return current
            current.finish()
        cfg = _parse_config(config)
        if config_include_keys:
            cfg = {k: v for k, v in cfg.items() if k in set(config_include_keys)}
        if config_exclude_keys:
            cfg = {k: v for k, v in cfg.items() if k not in set(config_exclude_keys)}
        cfg = {str(k).strip("-"): v for k, v in cfg.items()}
        project = project or os.environ.get("WANDB_PROJECT")
        entity = entity or os.environ.get("WANDB_ENTITY")
        group = group or os.environ.get("WANDB_RUN_GROUP")
        job_type = job_type or os.environ.get("WANDB_JOB_TYPE")
        notes = notes or os.environ.get("WANDB_NOTES")
        name = name or os.environ.get("WANDB_NAME")
        id = id or os.environ.get("WANDB_RUN_ID")
        tag_list = list(tags) if tags is not None else (_env_list("WANDB_TAGS") or [])
        fields = dict(project=project, entity=entity, group=group, job_type=job_type, notes=notes,
                      settings=settings if settings is not None else Settings())
        if _disabled(mode):
            new = RunDisabled(config=cfg, **fields)
            _bind_globals(new)
            new._on_finish = _forget
            return new
        # A wandb id names the run when nothing else does, so that
        # Api().run(id) and every labmate command find it.
        if name is None and id is not None:
            name = str(id)
        launched = _launched_config()
        # Under the supervisor, labmate run's --config wins over init's.
        recorded = {k: v for k, v in cfg.items() if k not in launched}
        lm_run = _labmate.init(name=name, config=recorded, tags=[str(t) for t in tag_list],
                               dir=_lab_parent(dir or os.environ.get("WANDB_DIR")))
        new = Run(lm_run, config={**cfg, **lm_run.config}, lab=_lab_of(lm_run), **fields)
        new._on_finish = _forget
        meta = {k: str(v) for k, v in (("project", project), ("group", group), ("job_type", job_type),
                                        ("notes", notes)) if v is not None}
        if meta:
            new._record_meta(**meta)
        lm_run.flush()
        _bind_globals(new)
        _install_exit_hook()
        termlog("recording into labmate run %s (%s)" % (lm_run.id, lm_run.dir))
        return new


def _lab_parent(folder) -> Optional[str]:
    """Where the lab of a standalone run is, when wandb's `dir` (or
    WANDB_DIR) names a folder: the nearest lab at or above it, else a new
    one in it. LABMATE_DIR, and the supervisor's run, come first."""
    if folder is None or os.environ.get("LABMATE_DIR") or os.environ.get("LABMATE_RUN_DIR"):
        return None
    start = os.path.abspath(os.fspath(folder))
    here = start
    while True:
        if os.path.isfile(os.path.join(here, ".labmate", "lab.json")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return start
        here = parent


def _lab_of(lm_run) -> Optional[str]:
    lab = os.path.dirname(os.path.dirname(lm_run.dir))
    return lab if os.path.isfile(os.path.join(lab, "lab.json")) else None


def _launched_config() -> dict:
    """The config `labmate run --config` gave the supervised run."""
    run_dir = os.environ.get("LABMATE_RUN_DIR")
    if not run_dir:
        return {}
    import json

    try:
        with open(os.path.join(run_dir, "run.json"), "rb") as f:
            launched = json.loads(f.read().decode("utf-8")).get("config")
    except (OSError, ValueError, AttributeError):
        return {}
    return launched if isinstance(launched, dict) else {}


def _forget(finished: Run) -> None:
    with _lock:
        if sys.modules[__name__].run is finished:
            _reset_globals()


def finish(exit_code: Optional[int] = None, quiet: Optional[bool] = None) -> None:
    """Finish the current run, if any."""
    with _lock:
        current = sys.modules[__name__].run
        if current is not None:
            current.finish(exit_code)


join = finish


def _at_exit() -> None:
    """A script that never calls finish() (nanoGPT, Lightning): its
    pending row and summary are recorded, then labmate's own exit hook
    (registered before this one, so it runs after) ends the run with the
    script's exit code."""
    current = sys.modules[__name__].run
    if current is not None:
        try:
            current._close_records()
        except Exception as exc:
            termwarn("recording the run's last row at exit failed: %r" % (exc,))


def _install_exit_hook() -> None:
    global _exit_hook
    if not _exit_hook:
        _exit_hook = True
        atexit.register(_at_exit)


def login(*args, **kwargs) -> bool:
    """No account, no network: always logged in."""
    return True


def require(*args, **kwargs) -> None:
    pass


def setup(*args, **kwargs):
    return None


def teardown(*args, **kwargs) -> None:
    pass


def _attach(*args, **kwargs):
    return sys.modules[__name__].run


attach = _attach


def __getattr__(name: str):
    if name.startswith("__") or name in _SUBMODULE_NAMES:
        raise AttributeError(name)
    return _unrecorded(name)


# -- `import wandb` -----------------------------------------------------------

# wandb's submodules are attributes once `wandb` is imported, as in wandb.
from . import apis, data_types, env, errors, sdk, util, wandb_run  # noqa: E402

_SUBMODULES = ("sdk", "sdk.lib", "sdk.lib.config_util", "sdk.wandb_run", "wandb_run", "util", "errors", "apis",
               "apis.public", "data_types", "env")


def _alias_as(top: str) -> None:
    """Make this package importable as `top` (the shim's `wandb`), with
    the same module objects under both names, so that classes compare
    equal whichever path imported them."""
    import importlib

    sys.modules[top] = sys.modules[__name__]
    for sub in _SUBMODULES:
        module = importlib.import_module("%s.%s" % (__name__, sub))
        sys.modules["%s.%s" % (top, sub)] = module
