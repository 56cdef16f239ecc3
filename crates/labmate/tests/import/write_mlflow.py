"""Writes an MLflow store at the tracking URI given, prints what it wrote."""
import json, sys
import mlflow
from mlflow.tracking import MlflowClient

uri, mode = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
client = MlflowClient(uri)
T0 = 1_700_000_000_000

def info(run_id):
    r = client.get_run(run_id)
    return {"id": run_id, "status": r.info.status, "start": r.info.start_time, "end": r.info.end_time,
            "user": r.info.user_id, "tags": r.data.tags}

if mode == "write":
    exp = mlflow.set_experiment("exp-one").experiment_id
    with mlflow.start_run(run_name="first") as r:
        mlflow.log_params({"lr": 0.001, "opt/name": "adam", "optim.beta": 0.9, "n": 3, "flag": True,
                           "note": "hello world"})
        mlflow.set_tags({"mlflow.source.git.commit": "abc123", "team": "vision",
                         "mlflow.note.content": "a note"})
        for s in range(4):
            mlflow.log_metric("loss", 1.0 / (s + 1), step=s, timestamp=T0 + s)
            mlflow.log_metric("val/acc", float("nan") if s == 1 else s / 10, step=s * 10, timestamp=T0 + 100 + s)
        first = r.info.run_id
    with mlflow.start_run(run_name="bad") as r:
        mlflow.log_metric("x", 2.5, step=7, timestamp=T0 + 200)
        bad = r.info.run_id
        mlflow.end_run(status="FAILED")
    stopped = client.create_run(exp, run_name="stopped").info.run_id
    client.log_metric(stopped, "y", -1.0, step=1, timestamp=T0 + 300)
    client.set_terminated(stopped, status="KILLED")
    live = client.create_run(exp, run_name="live").info.run_id
    client.log_metric(live, "y", 1.0, step=0, timestamp=T0 + 400)
    trashed = client.create_run(exp, run_name="trashed").info.run_id
    client.delete_run(trashed)
    gone = client.create_experiment("gone")
    client.create_run(gone, run_name="in a deleted experiment")
    client.delete_experiment(gone)
    print(json.dumps({"runs": [info(i) for i in (first, bad, stopped, live)]}))
else:
    # More points for the live run, then it ends.
    [live] = [r.info.run_id for r in client.search_runs([mlflow.get_experiment_by_name("exp-one").experiment_id],
                                                         "attributes.run_name = 'live'")]
    client.log_metric(live, "y", 2.0, step=1, timestamp=T0 + 401)
    client.log_metric(live, "z", 3.0, step=1, timestamp=T0 + 402)
    client.set_terminated(live, status="FINISHED")
    print(json.dumps({"runs": [info(live)]}))
