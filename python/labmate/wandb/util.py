"""``wandb.util``: the few helpers scripts call."""

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def generate_id(length: int = 8) -> str:
    """A random run-id-like string, as wandb's."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    from ._term import _unrecorded

    return _unrecorded("util." + name)
