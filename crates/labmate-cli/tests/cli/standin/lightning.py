# The calls Lightning's WandbLogger makes: the version check through
# importlib.metadata, require("service"), init with its keywords, the
# isinstance check on the run, its step metric, hyperparameters, metrics
# with trainer/global_step, and no finish (the script exits with 3).
import importlib.metadata
import sys

version = tuple(int(p) for p in importlib.metadata.version("wandb").split(".")[:3])
assert version >= (0, 12, 10), version
import wandb
from wandb.sdk.lib import RunDisabled
from wandb.wandb_run import Run

wandb.require("service")
init = {"name": "lit-mnist", "project": "lightning_logs", "dir": ".", "id": None, "resume": "allow",
        "anonymous": None, "tags": ["lightning"]}
experiment = wandb.run if wandb.run is not None else wandb.init(**init)
assert isinstance(experiment, (Run, RunDisabled))
experiment.define_metric("trainer/global_step")
experiment.define_metric("*", step_metric="trainer/global_step", step_sync=True)
experiment.config.update({"hidden": 64, "lr": 0.01}, allow_val_change=True)
for step in range(0, 100, 25):
    experiment.log(dict({"train_loss": 1.0 / (step + 1), "epoch": step // 50}, **{"trainer/global_step": step}))
experiment.log({"val_loss": 0.3, "trainer/global_step": 99})
sys.exit(3)
