"""A toy trainer for the labmate demo: linear regression by minibatch SGD on
synthetic data, in pure Python. Too large a learning rate diverges to NaN,
which is the point of one of the demo's runs."""

import argparse
import math
import random
import time

import labmate

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--lr", type=float, default=0.01)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--steps", type=int, default=200)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--sleep", type=float, default=0.012, help="seconds per step, to look like real work")
args = parser.parse_args()

# The data is the same for every run; the seed moves the init and the batches.
data_rng = random.Random(1234)
DIM = 8
scales = [0.3 + 2.7 * i / (DIM - 1) for i in range(DIM)]
true_w = [data_rng.gauss(0, 1) for _ in range(DIM)]


def sample(rng):
    x = [rng.gauss(0, s) for s in scales]
    return x, sum(w * v for w, v in zip(true_w, x)) + rng.gauss(0, 0.5)


train = [sample(data_rng) for _ in range(2000)]
val = [sample(data_rng) for _ in range(200)]


def mse(w, rows):
    total = 0.0
    for x, y in rows:
        err = sum(a * b for a, b in zip(w, x)) - y
        total += err * err  # no ** 2: it raises on overflow, where * gives inf
    return total / len(rows)


run = labmate.init(config={"lr": args.lr, "seed": args.seed, "steps": args.steps, "batch": args.batch})
rng = random.Random(args.seed)
w = [rng.gauss(0, 0.1) for _ in range(DIM)]
for step in range(args.steps):
    batch = rng.sample(train, args.batch)
    grad = [0.0] * DIM
    loss = 0.0
    for x, y in batch:
        err = sum(a * b for a, b in zip(w, x)) - y
        loss += err * err
        for i in range(DIM):
            grad[i] += 2 * err * x[i] / args.batch
    loss /= args.batch
    w = [a - args.lr * g for a, g in zip(w, grad)]
    metrics = {"loss": loss, "grad_norm": math.sqrt(sum(g * g for g in grad))}
    if step % 10 == 9 or step == args.steps - 1:
        metrics["val_loss"] = mse(w, val)
    labmate.log(metrics, step=step)
    if math.isnan(loss):
        raise FloatingPointError(f"loss is NaN at step {step} (lr={args.lr} is too large)")
    time.sleep(args.sleep)

run.summary["final_val_loss"] = mse(w, val)
print(f"done: val_loss {mse(w, val):.4f}")
