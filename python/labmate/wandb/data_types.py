"""``wandb.data_types``: the media values."""

from ._media import Audio, Histogram, Html, Image, Table, Video

__all__ = ["Audio", "Histogram", "Html", "Image", "Table", "Video"]


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    from ._term import _unrecorded

    return _unrecorded("data_types." + name)
