"""``wandb.errors``."""

from ._term import CommError, Error, UnsupportedError, UsageError
from ._term import ConfigError

__all__ = ["CommError", "ConfigError", "Error", "UnsupportedError", "UsageError"]
