# The shape of nanoGPT's train.py: init with a plain config dict, a log of
# 0-d tensors every eval interval, and no wandb.finish().
import wandb


class Tensor0d:
    """What losses.mean() gives: a 0-d tensor with .item()."""

    shape = ()

    def __init__(self, value):
        self._value = value

    def item(self):
        return self._value


config = {"learning_rate": 6e-4, "batch_size": 12, "n_layer": 12, "wandb_project": "owt"}
wandb.init(project=config["wandb_project"], name="gpt2-124M", config=config)
running_mfu = -1.0
for iter_num in range(0, 50, 10):
    losses = {"train": Tensor0d(4.0 - iter_num / 100), "val": Tensor0d(4.2 - iter_num / 100)}
    wandb.log({
        "iter": iter_num,
        "train/loss": losses["train"],
        "val/loss": losses["val"],
        "lr": config["learning_rate"],
        "mfu": running_mfu * 100,
    })
