# The calls transformers' WandbCallback makes, in its order: the
# availability and metadata checks, init when no run exists, config with
# allow_val_change, the globbed step metric, _label, scalars logged with
# train/global_step, single-value scalars into the summary, finish.
import importlib.metadata
import importlib.util
import numbers
import os

assert importlib.util.find_spec("wandb") is not None
import wandb

assert hasattr(wandb, "run")
assert importlib.metadata.version("wandb") == wandb.__version__
from wandb.sdk.lib.config_util import ConfigError as WandbConfigError  # noqa: F401

if wandb.run is None:
    wandb.init(project=os.getenv("WANDB_PROJECT", "huggingface"), name="bert-finetune", group="bert-base")
wandb.config.update({"learning_rate": 5e-5, "num_train_epochs": 3, "output_dir": "out"}, allow_val_change=True)
if getattr(wandb, "define_metric", None):
    wandb.define_metric("train/global_step")
    wandb.define_metric("*", step_metric="train/global_step", step_sync=True)
wandb.run._label(code="transformers_trainer")
wandb.config["model/num_parameters"] = 110_000_000

for global_step in (10, 20, 30):
    logs = {"loss": 1.0 / global_step, "learning_rate": 5e-5, "epoch": global_step / 30}
    wandb.log({**{"train/" + k: v for k, v in logs.items()}, "train/global_step": global_step})
wandb.log({"eval/loss": 0.25, "eval/runtime": 1.5, "train/global_step": 30})
for key, value in {"train_runtime": 12.5, "train_loss": 0.05, "total_flos": 1.0e12}.items():
    wandb.run.summary[key] = value
metadata = {k: v for k, v in dict(wandb.summary).items() if isinstance(v, numbers.Number) and not k.startswith("_")}
assert metadata["train_loss"] == 0.05 and metadata["train/loss"] == 1.0 / 30, metadata
assert wandb.config.get("model/num_parameters") == 110_000_000
wandb.finish()
assert wandb.run is None
