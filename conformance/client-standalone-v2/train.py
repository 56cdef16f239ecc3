# The script that wrote this fixture's run folder: the Python client on its
# own (no supervisor), run by ../fixed.py in an empty folder.
import labmate

run = labmate.init(
    name="client-standalone",
    config={"lr": 0.001, "optim": {"name": "adam", "betas": [0.9, 0.999]}, "clip": float("inf")},
    tags=["conformance", "client"],
)
for step in range(4):
    with labmate.span("forward"):
        pass
    labmate.log({"loss": 1.0 / (step + 1), "acc": step * 0.25})
labmate.log({"loss": float("nan"), "acc": float("inf"), "grad": float("-inf")})
labmate.log({"loss": 0.1, "note": "not a number"})
labmate.log({"loss": 0.05}, step=2**53 + 1)
labmate.log({"loss": 0.04}, step=2**63 - 1)
labmate.log({"loss": 0.03})
labmate.log({"loss": 0.02}, step=-2**63)
labmate.log({"損失": 1.5, "🚀/speed": 2.5, "e\u0301": 3.5, 'say "hi"\n': 4.5, "100%": 5.5})
run.config["batch"] = 32
run.summary.update({"best_loss": 0.02, "best_step": -2**63})
labmate.alert("loss is NaN", "at step 4", level="error")
labmate.finish()
