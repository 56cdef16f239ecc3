"""wandb's terminal helpers, its errors, and the harmless stand-ins for
what labmate does not record.

Everything a script reaches for that the stand-in does not implement is an
``_Unrecorded`` class: calling it, reading its attributes or calling those
all give more of the same, and the first use of each name says once on
stderr that labmate does not record it. Classes rather than objects, so
that ``isinstance(x, wandb.Object3D)`` still works (and is False).
"""

from __future__ import annotations

import os
import sys

_said: set = set()


def _silent() -> bool:
    return os.environ.get("WANDB_SILENT", "").lower() in ("1", "true", "yes")


def termlog(string: str = "", newline: bool = True, repeat: bool = True, prefix: bool = True) -> None:
    """A line on stderr as wandb prints it (quiet under WANDB_SILENT)."""
    if _silent():
        return
    _say(string, repeat, "wandb: " if prefix else "", newline)


def termwarn(string: str, repeat: bool = True, prefix: bool = True, **_ignored) -> None:
    _say(string, repeat, "wandb: WARNING " if prefix else "")


def termerror(string: str, repeat: bool = True, prefix: bool = True, **_ignored) -> None:
    _say(string, repeat, "wandb: ERROR " if prefix else "")


def termsetup(*_args, **_kwargs) -> None:
    pass


def _say(string, repeat: bool, prefix: str, newline: bool = True) -> None:
    string = str(string)
    if not repeat:
        if string in _said:
            return
        _said.add(string)
    try:
        sys.stderr.write(prefix + string + ("\n" if newline else ""))
        sys.stderr.flush()
    except Exception:
        pass


def _once(message: str) -> None:
    """Say `message` on stderr the first time only."""
    _say(message, False, "wandb: ")


class Error(Exception):
    """wandb's base error."""

    def __init__(self, message: str = "", context=None):
        super().__init__(message)
        self.message = message
        self.context = context


class CommError(Error):
    pass


class UsageError(Error):
    pass


class UnsupportedError(UsageError):
    pass


class ConfigError(Error):
    """A config key was given a new value without ``allow_val_change=True``
    (``wandb.sdk.lib.config_util.ConfigError``)."""


class _UnrecordedMeta(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _unrecorded("%s.%s" % (cls._name, name))

    def __repr__(cls):
        return "<labmate's stand-in for wandb.%s (not recorded)>" % cls._name

    def __bool__(cls):
        return True


class _Unrecorded(metaclass=_UnrecordedMeta):
    """An instance stands for whatever an unrecorded call returned."""

    _name = "?"

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _unrecorded("%s.%s" % (type(self)._name, name))

    def __call__(self, *args, **kwargs):
        return self

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __repr__(self):
        return "<labmate's stand-in for wandb.%s (not recorded)>" % type(self)._name


_classes: dict = {}


def _unrecorded(name: str):
    """The harmless class standing for `wandb.<name>`; says so once."""
    found = _classes.get(name)
    if found is None:
        _once("labmate's wandb stand-in does not record wandb.%s" % name)
        found = _classes[name] = _UnrecordedMeta(name.rsplit(".", 1)[-1], (_Unrecorded,), {"_name": name})
    return found
