"""Record encoding: every line the client writes, as docs/FORMAT.md says.

Logged points are the hot part of a flush and become `batch` records (format
2): a block of points column by column, each metric's values the base64 of
its little-endian doubles, made by array and base64 (C code, no per-value
formatting). Every other record (config, summary, meta, events, start, end)
is made plain JSON data by ``_jsonable`` and encoded by the json module.
Non-finite numbers in those become the documented strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import binascii
import collections.abc
import json
import math
import operator
import re
import struct
import sys
import time
from array import array
from typing import Any, Optional

_now = time.time  # the clock of every record
# The same clock in integer nanoseconds, for logged points: a batch's time
# offsets are then integer arithmetic.
_now_ns = time.time_ns

# Everything but batches goes through _jsonable() then this.
_encode_plain = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

# Steps are signed 64-bit integers on disk (docs/FORMAT.md), and so is each
# difference a batch's `dstep` lists.
_STEP_MIN, _STEP_MAX = -(2**63), 2**63 - 1
_BATCH_START = b'{"t":"batch","n":%d,"step":%d'
_BATCH_TIMES = b',"time":%s,"dt_us":%s,"data":{'
_LITTLE_ENDIAN = sys.byteorder == "little"


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


def _key_json(key) -> bytes:
    """A metric name as a JSON string, the way every reader takes it."""
    return _encode_plain(_text(key if isinstance(key, str) else str(key))).encode()


def _finite_or_string(value: float):
    """A float as JSON: itself when finite, else the documented string."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _metric_float(value: Any) -> Optional[float]:
    """A metric value as the double readers hold, or None when it is not a
    number. Integers too large for a double are infinite."""
    if value is None or isinstance(value, (str, bytes, bytearray)):
        return None
    try:
        integer = operator.index(value)  # bools, numpy and torch integers
    except Exception:
        pass
    else:
        try:
            return float(integer)
        except OverflowError:
            return math.inf if integer > 0 else -math.inf
    try:
        return float(value)
    except Exception:
        return None


def _doubles(values: array) -> bytes:
    """The base64 of an array('d') as little-endian doubles."""
    if not _LITTLE_ENDIAN:
        values = array("d", values)
        values.byteswap()
    return binascii.b2a_base64(values.tobytes(), newline=False)


_PACKERS: dict = {}  # points in a column -> Struct packing that many little-endian doubles


def _packed_doubles(values, count: int) -> bytes:
    """The base64 of `count` numbers from the iterable `values` as
    little-endian doubles, converted and checked by struct in C: raises
    when one is not a number."""
    packer = _PACKERS.get(count)
    if packer is None:
        if len(_PACKERS) >= 64:
            _PACKERS.clear()
        packer = _PACKERS[count] = struct.Struct("<%dd" % count)
    return binascii.b2a_base64(packer.pack(*values), newline=False)


def _batch_line(steps, deltas: list, times_ns, columns: list) -> bytes:
    """One `batch` record: the `steps` of its points (and their `deltas`,
    each within 64 bits), their times in integer nanoseconds, and the
    columns as (name as JSON, positions or None for all, the values as
    array('d') or already as base64 bytes)."""
    parts = [_BATCH_START % (len(steps), steps[0])]
    if deltas:
        if deltas.count(deltas[0]) == len(deltas):
            parts.append(b',"dstep":%d' % deltas[0])
        else:
            parts.append(b',"dstep":' + _encode_plain(deltas).encode())
    base = times_ns[0]
    offsets = [(t - base + 500) // 1000 for t in times_ns]  # to the nearest microsecond
    parts.append(_BATCH_TIMES % (repr(base / 1_000_000_000).encode(), _encode_plain(offsets).encode()))
    for i, (name, at, values) in enumerate(columns):
        parts.append(b"," + name if i else name)
        encoded = values if values.__class__ is bytes else _doubles(values)
        if at is None:
            parts += (b':"', encoded, b'"')
        else:
            parts += (b':{"at":', _encode_plain(at).encode(), b',"v":"', encoded, b'"}')
    parts.append(b"}}\n")
    return b"".join(parts)


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
