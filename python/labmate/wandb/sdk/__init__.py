"""``wandb.sdk``: where integrations find the run, its settings and config."""

from .. import Settings, finish, init, login, require, setup, teardown
from .._run import Artifact, Config, Run, Summary
from . import lib, wandb_run

__all__ = ["Artifact", "Config", "Run", "Settings", "Summary", "finish", "init", "lib", "login", "require",
           "setup", "teardown", "wandb_run"]
