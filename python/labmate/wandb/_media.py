"""wandb's media values: ``Image``, ``Table``, ``Histogram``, ``Audio``,
``Video``, ``Html``. A logged one is saved as a file under the run folder's
``media/<key>/`` (PNG, WAV, JSON, HTML, or a copy of the file it came from),
named after the step; what cannot be written without a library the script
does not already use (a video from an array) is counted and named once.

Stdlib only: PNG and WAV are written with zlib and wave; numpy arrays and
torch tensors are read through their own methods.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import wave
import zlib
from typing import Any, Optional

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(key: str) -> str:
    """A metric key as one folder name: no separators, never `..`."""
    name = _SAFE.sub("_", str(key).replace("/", "__")).lstrip(".")
    return name[:120] or "media"


class _Media:
    """What every media value shares: it knows how to write itself."""

    _kind = "media"
    _ext = ".json"

    def _write(self, path_stem: str) -> Optional[str]:  # pragma: no cover - overridden
        return None


def _as_array(data):
    """A numpy array of `data` (a numpy array, a torch tensor, nested
    lists), or None when numpy is not importable."""
    if hasattr(data, "detach") and hasattr(data, "cpu"):  # a torch tensor
        data = data.detach().cpu().numpy()
    try:
        import numpy  # only when the script logs arrays, so it has numpy
    except ImportError:
        return None
    return numpy.asarray(data)


def _png(width: int, height: int, channels: int, rows: bytes) -> bytes:
    """A PNG of 8-bit pixels, rows top to bottom without filter bytes."""
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    stride = width * channels
    raw = b"".join(b"\x00" + rows[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


class Image(_Media):
    """An image from a file path, a PIL image, a numpy array or a tensor
    (HxW, HxWxC, or CxHxW for tensors; floats in [0, 1] are scaled)."""

    _kind = "image"

    def __init__(self, data_or_path=None, mode=None, caption=None, grouping=None, classes=None,
                 boxes=None, masks=None, file_type=None, normalize=True, **_ignored):
        self._data = data_or_path
        self._normalize = normalize
        self.caption = caption
        self.mode = mode

    def _write(self, stem: str) -> Optional[str]:
        data = self._data
        if isinstance(data, (str, os.PathLike)):
            return _copy(data, stem)
        if hasattr(data, "save") and hasattr(data, "mode") and hasattr(data, "size"):  # PIL
            data.save(stem + ".png", format="PNG")
            return stem + ".png"
        is_tensor = hasattr(data, "detach")
        array = _as_array(data)
        if array is None:
            return None
        if array.ndim == 3 and is_tensor and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
            array = array.transpose(1, 2, 0)  # torch's CxHxW
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
            return None
        if array.dtype.kind == "f":
            import numpy

            finite = numpy.nan_to_num(array.astype("float64"))
            if self._normalize and finite.size and finite.min() >= 0 and finite.max() <= 1:
                finite = finite * 255
            array = finite.clip(0, 255)
        array = array.clip(0, 255).astype("uint8") if array.dtype.kind in "iub" else array.astype("uint8")
        height, width = array.shape[0], array.shape[1]
        channels = 1 if array.ndim == 2 else array.shape[2]
        with open(stem + ".png", "wb") as f:
            f.write(_png(width, height, channels, array.tobytes()))
        return stem + ".png"


class Audio(_Media):
    """Sound from a file path, or samples (floats in [-1, 1]) with a rate."""

    _kind = "audio"

    def __init__(self, data_or_path=None, sample_rate=None, caption=None, **_ignored):
        self._data = data_or_path
        self.sample_rate = sample_rate
        self.caption = caption

    def _write(self, stem: str) -> Optional[str]:
        if isinstance(self._data, (str, os.PathLike)):
            return _copy(self._data, stem)
        if not self.sample_rate:
            return None
        array = _as_array(self._data)
        if array is None:
            return None
        samples = array.astype("float64")
        if samples.ndim == 1:
            samples = samples[:, None]
        if samples.ndim != 2:
            return None
        pcm = (samples.clip(-1, 1) * 32767).astype("<i2").tobytes()
        with wave.open(stem + ".wav", "wb") as w:
            w.setnchannels(samples.shape[1])
            w.setsampwidth(2)
            w.setframerate(int(self.sample_rate))
            w.writeframes(pcm)
        return stem + ".wav"


class Video(_Media):
    """A video file (copied); frames from an array are counted, not encoded."""

    _kind = "video"

    def __init__(self, data_or_path=None, caption=None, fps=None, format=None, **_ignored):
        self._data = data_or_path
        self.caption = caption

    def _write(self, stem: str) -> Optional[str]:
        if isinstance(self._data, (str, os.PathLike)):
            return _copy(self._data, stem)
        return None


class Html(_Media):
    """An HTML page from text or a file, saved as it is (never served)."""

    _kind = "html"

    def __init__(self, data=None, inject=True, data_is_not_path=False, **_ignored):
        self._data = data
        self._is_text = data_is_not_path

    def _write(self, stem: str) -> Optional[str]:
        data = self._data
        if hasattr(data, "read"):
            data = data.read()
        elif isinstance(data, (str, os.PathLike)) and not self._is_text and os.path.isfile(data):
            return _copy(data, stem)
        with open(stem + ".html", "w", encoding="utf-8") as f:
            f.write(str(data))
        return stem + ".html"


class Histogram(_Media):
    """A histogram of a sequence, or given as numpy's (counts, edges);
    saved as its bins."""

    _kind = "histogram"

    def __init__(self, sequence=None, np_histogram=None, num_bins=64):
        if np_histogram is not None:
            counts, edges = np_histogram
            self.histogram = [float(c) for c in _flat(counts)]
            self.bins = [float(e) for e in _flat(edges)]
            return
        values = [v for v in (_finite(x) for x in _flat(sequence if sequence is not None else [])) if v is not None]
        num_bins = max(1, min(int(num_bins), 512))
        lo, hi = (min(values), max(values)) if values else (0.0, 0.0)
        if hi == lo:
            hi = lo + 1.0
        width = (hi - lo) / num_bins
        counts = [0] * num_bins
        for v in values:
            counts[min(int((v - lo) / width), num_bins - 1)] += 1
        self.histogram = [float(c) for c in counts]
        self.bins = [lo + i * width for i in range(num_bins + 1)]

    def _write(self, stem: str) -> Optional[str]:
        with open(stem + ".histogram.json", "w") as f:
            json.dump({"bins": self.bins, "values": self.histogram}, f)
        return stem + ".histogram.json"


class Table(_Media):
    """Rows of cells under named columns, saved as JSON (images in cells
    saved beside it and named by path)."""

    _kind = "table"

    def __init__(self, columns=None, data=None, rows=None, dataframe=None, dtype=None, optional=True,
                 allow_mixed_types=False, log_mode=None, **_ignored):
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.values.tolist()
        data = data if data is not None else rows
        self.columns = list(columns) if columns is not None else []
        self.data = [list(row) for row in data] if data is not None else []
        if not self.columns and self.data:
            self.columns = ["Column_%d" % (i + 1) for i in range(len(self.data[0]))]

    def add_data(self, *row) -> None:
        self.data.append(list(row))

    def add_column(self, name, data, optional=False) -> None:
        self.columns.append(name)
        for i, value in enumerate(data):
            if i < len(self.data):
                self.data[i].append(value)
            else:
                self.data.append([None] * (len(self.columns) - 1) + [value])

    def get_column(self, name, convert_to=None) -> list:
        i = self.columns.index(name)
        return [row[i] if i < len(row) else None for row in self.data]

    def _write(self, stem: str) -> Optional[str]:
        cells = []
        for r, row in enumerate(self.data):
            out = []
            for c, cell in enumerate(row):
                if isinstance(cell, _Media):
                    written = cell._write("%s-r%d-c%d" % (stem, r, c))
                    out.append({"file": os.path.basename(written)} if written else None)
                else:
                    out.append(_cell(cell))
            cells.append(out)
        with open(stem + ".table.json", "w") as f:
            json.dump({"columns": [str(c) for c in self.columns], "data": cells}, f, allow_nan=False)
        return stem + ".table.json"


def _cell(value: Any):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    number = _finite(value)
    if number is not None:
        return number
    if isinstance(value, float):
        return str(value)  # NaN, inf
    return str(value)


def _finite(value) -> Optional[float]:
    try:
        number = float(value)
    except Exception:
        return None
    return number if math.isfinite(number) else None


def _flat(values):
    if hasattr(values, "detach"):
        values = values.detach().cpu()
    if hasattr(values, "tolist"):
        values = values.tolist()
    if isinstance(values, (list, tuple)):
        for v in values:
            if isinstance(v, (list, tuple)):
                yield from _flat(v)
            else:
                yield v
    else:
        yield values


def _copy(path, stem: str) -> Optional[str]:
    path = os.fspath(path)
    if not os.path.isfile(path):
        return None
    target = stem + os.path.splitext(path)[1].lower()
    shutil.copyfile(path, target)
    return target
