"""``wandb.apis``: the read API."""

from . import public
from .public import Api

__all__ = ["Api", "public"]
