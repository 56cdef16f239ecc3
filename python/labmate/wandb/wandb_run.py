"""``wandb.wandb_run``: the run class, where Lightning imports it."""

from ._run import Run, RunDisabled

__all__ = ["Run", "RunDisabled"]
