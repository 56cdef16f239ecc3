"""Writes two wandb offline runs under the folder given; prints what it logged."""
import json
import sys
import time

import wandb

root = sys.argv[1]
rows = int(sys.argv[2])
began = time.time()
run = wandb.init(mode="offline", dir=root, project="proj", name="nice-run", group="g1", job_type="train",
                 tags=["a", "b"], notes="some notes",
                 config={"lr": 0.001, "opt": {"name": "adam", "beta": 0.9}, "layers": [1, 2]})
run.config.update({"batch": 32})
for i in range(rows):
    run.log({"loss": float("nan") if i == 2 else 1.0 / (i + 1), "acc": {"top1": i / 10}, "word": "hi"})
run.log({"late": 7.0}, step=rows + 10)
run.summary["best"] = 0.5
failed = run.id
run.finish(exit_code=3)

run = wandb.init(mode="offline", dir=root, project="proj", name="ok-run")
run.log({"x": 1.0})
run.log({"x": 2.0})
ok = run.id
run.finish()
print(json.dumps({"failed": failed, "ok": ok, "began": began, "ended": time.time()}))
