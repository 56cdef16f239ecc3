"""``wandb.env``: the environment variables wandb reads, and setters."""

import os

PROJECT = "WANDB_PROJECT"
ENTITY = "WANDB_ENTITY"
MODE = "WANDB_MODE"
SILENT = "WANDB_SILENT"
RUN_ID = "WANDB_RUN_ID"
RUN_GROUP = "WANDB_RUN_GROUP"
NAME = "WANDB_NAME"
NOTES = "WANDB_NOTES"
TAGS = "WANDB_TAGS"
DIR = "WANDB_DIR"
JOB_TYPE = "WANDB_JOB_TYPE"


def set_project(value, env=None) -> None:
    (env if env is not None else os.environ)[PROJECT] = str(value)


def set_entity(value, env=None) -> None:
    (env if env is not None else os.environ)[ENTITY] = str(value)
