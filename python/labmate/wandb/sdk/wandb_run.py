"""``wandb.sdk.wandb_run``: the run class."""

from .._run import Run, RunDisabled

__all__ = ["Run", "RunDisabled"]
