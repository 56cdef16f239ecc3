"""``wandb.apis.public``: the read API's classes."""

from .._api import Api, Run, Runs

__all__ = ["Api", "Run", "Runs"]
