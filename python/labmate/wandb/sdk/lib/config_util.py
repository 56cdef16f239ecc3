"""``wandb.sdk.lib.config_util``: the error a changed config key raises."""

from ..._term import ConfigError

__all__ = ["ConfigError"]
