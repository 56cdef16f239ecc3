"""``wandb.sdk.lib``: ``RunDisabled``, what ``mode="disabled"`` returns."""

from ..._run import RunDisabled
from . import config_util

__all__ = ["RunDisabled", "config_util"]
