# The script that wrote this fixture's client-4242.jsonl: the Python client
# in a copy of client-supervised/'s run folder (LABMATE_RUN_DIR, as the
# supervisor sets it), where it only adds records to the supervisor's run.
import labmate

run = labmate.init(name="client-supervised", config={"batch": 8}, tags=["client"])
for step in range(3):
    labmate.log({"loss": 2.0 ** -step, "acc": step / 3})
labmate.log({"loss": float("nan")}, step=2**63 - 1)
labmate.log({"損失": 1.5, "e\u0301": 3.5})
run.config["lr"] = 0.01
run.summary["best_loss"] = 0.25
labmate.alert("plateau", "no progress for 3 steps")
labmate.finish()
