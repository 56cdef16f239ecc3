# The calls Accelerate's WandBTracker makes: the metadata check, init with
# the project as run_name and the user's init kwargs, config with
# allow_val_change, log with an explicit step (a string value among the
# numbers), images, finish.
import importlib.metadata
import importlib.util

assert importlib.util.find_spec("wandb") is not None
importlib.metadata.metadata("wandb")
import wandb

run = wandb.init(project="accelerate-demo", **{"entity": "team", "tags": ["accel"], "notes": "from accelerate"})
wandb.config.update({"lr": 1e-3, "model": "mlp"}, allow_val_change=True)
for step in range(5):
    run.log({"loss": 1.0 / (step + 1), "phase": "train"}, step=step)
run.log({"samples": [wandb.Image("pixel.png")]}, step=5)
run.finish()
