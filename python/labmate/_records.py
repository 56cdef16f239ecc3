"""Record encoding: every line the client writes, as docs/FORMAT.md says.

Log records are the hot part of a flush and go through bytes %-templates,
one per set of metric names; every other record (config, summary, meta,
events, start, end) is made plain JSON data by ``_jsonable`` and encoded by
the json module. Non-finite numbers become the documented strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import collections.abc
import json
import math
import operator
import re
import time
from typing import Any, Optional

_now = time.time  # the clock of every record

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


_SURROGATES = re.compile("[\ud800-\udfff]+")


def _text(value: str) -> str:
    """A string as every reader takes it: lone surrogates, which is what
    os.fsdecode() and os.environ make of bytes that are not UTF-8, become
    U+FFFD as the supervisor writes them (JSON readers refuse them)."""
    if value.isascii():
        return value
    return _SURROGATES.sub(_replace_surrogates, value)


def _replace_surrogates(found) -> str:
    try:  # bytes that os.fsdecode() escaped: replaced as a decoder would
        return found.group().encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return "\ufffd" * len(found.group())


def _log_template(keys: tuple) -> bytes:
    """The line template for one set of metric names, e.g.
    {"t":"log","step":%d,"time":%.6f,"data":{"loss":%.17g,"acc":%.17g}}"""
    fields = b",".join(
        _encode_plain(_text(key if isinstance(key, str) else str(key))).encode().replace(b"%", b"%%")
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
        return _text(str(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _finite_or_string(float(value))
    if depth < 32:  # deep or cyclic structures end up as their str()
        if isinstance(value, collections.abc.Mapping):
            return {
                _text(k if isinstance(k, str) else str(k)): _jsonable(v, depth + 1)
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
