"""Tests of labmate's wandb stand-in (``labmate.wandb``): scripts written
for wandb run in a subprocess and what they recorded is read back from the
run folder; the read API runs against the ``labmate`` binary (LABMATE_BIN).

Run from the repository root:

    PYTHONPATH=python python3 -m unittest tests.test_wandb -v
"""

import json
import os
import subprocess
import sys
import textwrap
import unittest
import zlib

from .test_client import LABMATE_BIN, LabTestCase

import labmate.wandb as standin  # noqa: E402  (pure helpers only)
from labmate.wandb import _api, _media, _run  # noqa: E402

HEADER = "import labmate.wandb as wandb\n"


class WandbTestCase(LabTestCase):
    def script(self, code, env=None, expect_rc=0):
        return self.run_script(HEADER + textwrap.dedent(code), env=env, expect_rc=expect_rc)

    def all_records(self, run_dir=None):
        return self.records(run_dir or self.only_run())

    def points(self, records):
        """step -> {key: value} of every logged point."""
        out = {}
        for record in records:  # batches come expanded into log records
            if record["t"] == "log":
                out.setdefault(record["step"], {}).update(record["data"])
        return out

    def of_type(self, records, kind):
        return [r for r in records if r["t"] == kind]


class StepTest(WandbTestCase):
    def test_steps_follow_wandb(self):
        done = self.script("""
            wandb.init(project="p")
            wandb.log({"a": 1})
            wandb.log({"b": 2}, commit=False)
            wandb.log({"c": 3})
            wandb.log({"d": 4}, step=5)
            wandb.log({"e": 5}, step=5)
            wandb.log({"f": 6}, step=7)
            wandb.log({"g": 7}, step=3)
            wandb.log({"h": 8}, step=7, commit=True)
            wandb.log({"i": 9})
            assert wandb.run.step == 9, wandb.run.step
            wandb.finish()
        """)
        points = self.points(self.all_records())
        self.assertEqual(points, {0: {"a": 1.0}, 1: {"b": 2.0, "c": 3.0}, 5: {"d": 4.0, "e": 5.0},
                                  7: {"f": 6.0, "h": 8.0}, 8: {"i": 9.0}})
        self.assertIn("less than the current step 7", done.stderr)
        warnings = [r for r in self.of_type(self.all_records(), "event") if r["kind"] == "warning"]
        self.assertTrue(any(w["data"].get("step") == 3 for w in warnings), warnings)

    def test_a_pending_row_is_recorded_at_exit_without_finish(self):
        self.script("""
            wandb.init()
            wandb.log({"loss": 0.5}, step=10)
        """)
        records = self.all_records()
        self.assertEqual(self.points(records), {10: {"loss": 0.5}})
        self.assertEqual(self.end(records)["status"], "finished")

    def test_the_exit_code_decides_the_end(self):
        self.script("""
            import sys
            wandb.init()
            wandb.log({"loss": 1.0})
            sys.exit(4)
        """, expect_rc=4)
        end = self.end(self.all_records())
        self.assertEqual((end["status"], end["exit_code"]), ("failed", 4))


class ValueTest(WandbTestCase):
    def test_values_of_every_kind(self):
        self.script("""
            class Tensor0d:
                shape = ()
                def __init__(self, v): self.v = v
                def item(self): return self.v
            class Meter:  # neither a number nor media
                pass
            wandb.init()
            wandb.log({"opt": {"lr": 0.1, "inner": {"m": 0.9}}, "loss": Tensor0d(2.5), "ok": True,
                       "name": "text", "none": None, "meter": Meter()})
            wandb.log({"loss": Tensor0d(2.0)})
            wandb.finish()
        """)
        records = self.all_records()
        self.assertEqual(self.points(records), {0: {"opt.lr": 0.1, "opt.inner.m": 0.9, "loss": 2.5, "ok": 1.0},
                                                1: {"loss": 2.0}})
        messages = " ".join(e["message"] for e in self.of_type(records, "event"))
        self.assertIn("'name'", messages)
        self.assertIn("'meter'", messages)

    def test_media_are_saved_under_the_run_folder(self):
        with open(os.path.join(self.work, "pic.png"), "wb") as f:
            f.write(_media._png(1, 1, 1, b"\x80"))
        self.script("""
            wandb.init()
            table = wandb.Table(columns=["x", "img"])
            table.add_data(1, wandb.Image("pic.png"))
            wandb.log({"samples": [wandb.Image("pic.png"), wandb.Image("pic.png")], "table": table,
                       "hist": wandb.Histogram([1, 2, 2, 3], num_bins=2), "page": wandb.Html("<b>x</b>"),
                       "loss": 1.0})
            wandb.log({"grads": [0.1, 0.2, 0.3]})
            wandb.finish()
        """)
        run = self.only_run()
        media = os.path.join(run, "media")
        self.assertTrue(os.path.isfile(os.path.join(media, "samples", "0-0.png")))
        self.assertTrue(os.path.isfile(os.path.join(media, "samples", "0-1.png")))
        with open(os.path.join(media, "table", "0.table.json")) as f:
            table = json.load(f)
        self.assertEqual(table["columns"], ["x", "img"])
        self.assertEqual(table["data"][0][0], 1)
        self.assertTrue(os.path.isfile(os.path.join(media, "table", table["data"][0][1]["file"])))
        with open(os.path.join(media, "hist", "0.histogram.json")) as f:
            self.assertEqual(json.load(f)["values"], [1.0, 3.0])
        with open(os.path.join(media, "page", "0.html")) as f:
            self.assertEqual(f.read(), "<b>x</b>")
        self.assertTrue(os.path.isfile(os.path.join(media, "grads", "1.histogram.json")))
        self.assertEqual(self.points(self.all_records()), {0: {"loss": 1.0}})

    def test_png_encoder(self):
        png = _media._png(2, 1, 3, bytes([255, 0, 0, 0, 0, 255]))
        self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n"))
        start = png.index(b"IDAT") + 4
        length = int.from_bytes(png[start - 8:start - 4], "big")
        self.assertEqual(zlib.decompress(png[start:start + length]), b"\x00" + bytes([255, 0, 0, 0, 0, 255]))

    def test_media_names_stay_inside_the_run_folder(self):
        for key in ("../../etc", "/abs", "..", "a/b"):
            name = _media._safe_name(key)
            self.assertNotIn("/", name)
            self.assertFalse(name.startswith("."), name)


class ConfigTest(WandbTestCase):
    def test_config_follows_wandb(self):
        with open(os.path.join(self.work, "cfg.yaml"), "w") as f:
            f.write("wandb_version: 1\nlr:\n  desc: null\n  value: 0.01\nlayers: [64, 64]\nname: 'mlp'\n")
        self.script("""
            import argparse
            from labmate.wandb.sdk.lib.config_util import ConfigError
            run = wandb.init(config="cfg.yaml")
            assert wandb.config.lr == 0.01 and wandb.config["layers"] == [64, 64], wandb.config
            wandb.config.update(argparse.Namespace(batch=32))
            wandb.config.dropout = 0.1
            try:
                wandb.config.update({"lr": 0.5})
            except ConfigError:
                pass
            else:
                raise SystemExit("no ConfigError")
            wandb.config.update({"lr": 0.5}, allow_val_change=True)
            wandb.config.setdefaults({"lr": 9, "warmup": 10})
            assert wandb.config.as_dict()["warmup"] == 10 and wandb.config.lr == 0.5
            assert "batch" in wandb.config.keys() and dict(wandb.config.items())["dropout"] == 0.1
            assert wandb.config.get("missing", 3) == 3 and getattr(wandb.config, "missing", None) is None
            wandb.finish()
        """)
        merged = {}
        for record in self.of_type(self.all_records(), "config"):
            merged.update(record["data"])
        with open(os.path.join(self.only_run(), "run.json")) as f:
            merged = dict(json.load(f)["config"], **merged)
        self.assertEqual(merged, {"lr": 0.5, "layers": [64, 64], "name": "mlp", "batch": 32, "dropout": 0.1,
                                  "warmup": 10})

    def test_yaml_subset(self):
        self.assertEqual(_run._yaml_subset("a: 1\nb:\n  c: true\n  d: [1, x]\ne: 'q' # note\n"),
                         {"a": 1, "b": {"c": True, "d": [1, "x"]}, "e": "q"})
        with self.assertRaises(ValueError):
            _run._yaml_subset("just words\n")


class SummaryTest(WandbTestCase):
    def test_summary_and_metric_definitions(self):
        self.script("""
            wandb.init()
            wandb.define_metric("step")
            wandb.define_metric("val/*", step_metric="step", summary="min,max", goal="minimize")
            for i, v in enumerate([3.0, 1.0, 2.0]):
                wandb.log({"val/loss": v, "train/loss": v * 2, "step": i * 100})
            assert wandb.summary["val/loss"] == {"min": 1.0, "max": 3.0}, dict(wandb.summary)
            assert wandb.summary["train/loss"] == 4.0
            wandb.run.summary["best_epoch"] = 0
            wandb.run.summary.best_epoch = 1
            wandb.summary.update({"note": "ok"})
            wandb.finish()
        """)
        records = self.all_records()
        defines = self.of_type(records, "define")
        self.assertEqual(defines[0], {"t": "define", "time": defines[0]["time"], "metric": "step"})
        self.assertEqual(defines[1]["step_metric"], "step")
        self.assertEqual(defines[1]["summary"], "min,max")
        self.assertEqual(defines[1]["goal"], "minimize")
        summary = {}
        for record in self.of_type(records, "summary"):
            summary.update(record["data"])
        self.assertEqual(summary["best_epoch"], 1)
        self.assertEqual(summary["val/loss"], {"min": 1.0, "max": 3.0})
        self.assertEqual(summary["train/loss"], 4.0)
        self.assertEqual(summary["note"], "ok")


class ModuleTest(WandbTestCase):
    def test_globals_follow_the_run(self):
        self.script("""
            import os
            assert wandb.run is None
            try:
                wandb.log({"a": 1})
            except wandb.Error:
                pass
            else:
                raise SystemExit("log before init")
            run = wandb.init(project="p", entity="team", group="g", job_type="train", notes="n", tags=["t"])
            assert wandb.run is run and wandb.config is run.config and wandb.summary is run.summary
            assert run.project == "p" and run.entity == "team" and run.group == "g" and run.tags == ("t",)
            assert run.path == "team/p/" + run.id and os.path.isdir(run.dir)
            assert wandb.init() is run
            with wandb.init(reinit=True) as second:
                assert second is not run and wandb.run is second
            assert wandb.run is None
        """)
        runs = self.run_dirs()
        self.assertEqual(len(runs), 2)

    def test_meta_is_recorded(self):
        self.script("""
            wandb.init(project="owt", group="g", job_type="eval", notes="why", tags=["a", "b"], name="n1")
            wandb.finish()
        """)
        metas = self.of_type(self.all_records(), "meta")
        self.assertEqual(metas[0]["project"], "owt")
        self.assertEqual((metas[0]["group"], metas[0]["job_type"], metas[0]["notes"]), ("g", "eval", "why"))
        with open(os.path.join(self.only_run(), "run.json")) as f:
            doc = json.load(f)
        self.assertEqual((doc["name"], doc["tags"]), ("n1", ["a", "b"]))

    def test_environment_variables(self):
        done = self.script("""
            run = wandb.init()
            assert run.project == "envp" and run.group == "envg" and run.tags == ("x", "y"), run.tags
            assert run.name == "abc123" and run.notes == "from env"
            wandb.finish()
        """, env=self.env(WANDB_PROJECT="envp", WANDB_RUN_GROUP="envg", WANDB_TAGS="x, y",
                          WANDB_NOTES="from env", WANDB_RUN_ID="abc123", WANDB_SILENT="true"))
        self.assertNotIn("recording into", done.stderr)

    def test_wandb_dir_is_where_the_lab_is_looked_for(self):
        os.makedirs(os.path.join(self.work, "logs"))
        self.script("""
            run = wandb.init(dir="logs")
            wandb.finish()
        """)
        self.assertTrue(os.path.isdir(os.path.join(self.work, "logs", ".labmate", "runs")))
        self.script("""
            import os
            run = wandb.init()
            assert run.dir.startswith(os.path.abspath("logs/.labmate/runs/")), run.dir
            wandb.finish()
        """, env=self.env(WANDB_DIR=os.path.join(self.work, "logs")))

    def test_disabled_records_nothing(self):
        for env, mode in ((self.env(WANDB_MODE="disabled"), None), (self.env(), "disabled")):
            with self.subTest(mode=mode):
                self.script("""
                    from labmate.wandb.sdk.lib import RunDisabled
                    from labmate.wandb.wandb_run import Run
                    run = wandb.init(mode=%r, config={"a": 1})
                    assert isinstance(run, RunDisabled) and isinstance(run, (Run, RunDisabled))
                    run.log({"x": 1})
                    run.config.update({"b": 2})
                    assert wandb.config.a == 1
                    wandb.finish()
                """ % mode, env=env)
                self.assertFalse(os.path.exists(self.lab))

    def test_what_is_not_recorded_is_harmless_and_said_once(self):
        done = self.script("""
            wandb.init()
            wandb.plot.line_series(xs=[1], ys=[[1]])
            wandb.plot.line_series(xs=[2], ys=[[2]])
            assert not isinstance(1, wandb.Object3D)
            wandb.run.some_new_method(1, k=2)
            wandb.watch(object(), log="all")
            assert wandb.login() is True
            wandb.finish()
        """)
        self.assertEqual(done.stderr.count("does not record wandb.plot.line_series"), 1, done.stderr)
        self.assertIn("does not record wandb.Run.some_new_method", done.stderr)

    def test_alert_save_and_artifacts(self):
        with open(os.path.join(self.work, "model.pt"), "wb") as f:
            f.write(b"weights")
        self.script("""
            import os
            run = wandb.init()
            wandb.alert(title="loss up", text="by 10%", level=wandb.AlertLevel.ERROR)
            saved = wandb.save("model.pt")
            assert len(saved) == 1 and open(saved[0], "rb").read() == b"weights"
            art = wandb.Artifact("model-x", type="model", metadata={"acc": 0.9})
            art.add_file("model.pt")
            run.log_artifact(art, aliases=["best"])
            found = run.use_artifact("model-x:latest")
            assert found.download() is not None
            assert open(os.path.join(found.download(), "model.pt"), "rb").read() == b"weights"
            wandb.finish()
        """)
        run = self.only_run()
        with open(os.path.join(run, "artifacts", "model-x", "v0", "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual((manifest["type"], manifest["aliases"], manifest["files"]), ("model", ["best"], ["model.pt"]))
        self.assertEqual(manifest["metadata"], {"acc": 0.9})
        alerts = [e for e in self.of_type(self.all_records(), "event") if e["kind"] == "alert"]
        self.assertEqual(alerts[0]["data"], {"title": "loss up", "text": "by 10%", "level": "error"})


class FilterTest(unittest.TestCase):
    DOC = {"config": {"lr": 0.01, "opt": {"name": "adam"}}, "summary_metrics": {"loss": 0.2},
           "state": "finished", "tags": ["baseline", "v2"], "group": "g1", "display_name": "run-a"}

    def test_mongo_filters(self):
        match = lambda f: _api._matches(self.DOC, f)  # noqa: E731
        self.assertTrue(match({"config.lr": 0.01}))
        self.assertTrue(match({"config.lr.value": 0.01}))
        self.assertTrue(match({"config.opt.name": {"$in": ["adam", "sgd"]}}))
        self.assertTrue(match({"summary_metrics.loss": {"$lt": 0.5, "$gte": 0.2}}))
        self.assertFalse(match({"summary_metrics.loss": {"$gt": 0.2}}))
        self.assertTrue(match({"tags": "baseline"}))
        self.assertTrue(match({"tags": {"$in": ["v2", "x"]}}))
        self.assertTrue(match({"tags": {"$nin": ["x"]}}))
        self.assertTrue(match({"$or": [{"state": "failed"}, {"group": "g1"}]}))
        self.assertFalse(match({"$and": [{"state": "finished"}, {"group": "g2"}]}))
        self.assertTrue(match({"display_name": {"$regex": "^run-"}}))
        self.assertTrue(match({"config.warmup": {"$exists": False}}))
        self.assertFalse(match({"config.lr": {"$exists": False}}))
        self.assertTrue(match({"state": {"$ne": "running"}}))
        with self.assertRaises(standin.Error):
            match({"state": {"$near": 1}})


@unittest.skipUnless(LABMATE_BIN, "LABMATE_BIN names the labmate binary")
class ApiTest(WandbTestCase):
    """Cross-side: runs written by the stand-in, read back by wandb.Api()."""

    def api(self, code):
        env = self.env(LABMATE_BIN=LABMATE_BIN)
        return self.run_script("import labmate.wandb as wandb\napi = wandb.Api()\n" + textwrap.dedent(code), env=env)

    def make_runs(self):
        for lr, state, tags in ((0.01, "0", '["base"]'), (0.1, "3", '["wide"]'), (0.001, "0", '[]')):
            self.script("""
                import sys
                wandb.init(project="owt", group="g", config={"lr": %s}, tags=%s, name="lr-%s")
                for i in range(100):
                    wandb.log({"loss": 1.0 / (i + 1) + %s, "acc": i / 100})
                    if i %% 10 == 0:
                        wandb.log({"val": 0.5}, commit=False)
                wandb.log({"late": 1.0})
                sys.exit(%s)
            """ % (lr, tags, lr, lr, state), expect_rc=int(state))

    def test_runs_filters_and_order(self):
        self.make_runs()
        self.api("""
            runs = api.runs("local/owt", filters={"config.lr": {"$lte": 0.01}}, order="config.lr")
            assert [r.name for r in runs] == ["lr-0.001", "lr-0.01"], [r.name for r in runs]
            assert all(r.state == "finished" for r in runs)
            failed = api.runs(filters={"state": "failed"})
            assert [r.name for r in failed] == ["lr-0.1"] and failed[0].exit_code == 3
            tagged = api.runs(filters={"$or": [{"tags": "base"}, {"tags": "wide"}]})
            assert len(tagged) == 2
            assert len(api.runs("other-project")) == 0
            one = api.run("local/owt/" + runs[0].id)
            assert one.config["lr"] == 0.001 and one.group == "g" and one.project == "owt"
            assert abs(one.summary["loss"] - (0.01 + 0.001)) < 1e-12, one.summary
            assert one.lastHistoryStep == 100, one.lastHistoryStep
            assert api.run("lr-0.01").id == runs[1].id
        """)

    def test_history_and_scan_history(self):
        self.make_runs()
        self.api("""
            run = api.run("lr-0.01")
            rows = run.history(pandas=False)
            assert len(rows) == 101, len(rows)
            # val was logged with commit=False after step i: it is in row i + 1.
            assert rows[0]["_step"] == 0 and rows[0]["loss"] == 1.01 and "val" not in rows[0], rows[0]
            assert rows[1]["val"] == 0.5 and "val" not in rows[2] and rows[100] == {"_step": 100, "_timestamp": rows[100]["_timestamp"],
                                                          "_runtime": rows[100]["_runtime"], "late": 1.0}
            both = run.history(keys=["loss", "val"], pandas=False)
            assert [r["_step"] for r in both] == list(range(1, 100, 10)), [r["_step"] for r in both]
            few = run.history(samples=10, keys=["loss"], pandas=False)
            assert 4 <= len(few) <= 20 and few[0]["_step"] == 0, len(few)
            every = list(run.scan_history(keys=["acc"]))
            assert [r["_step"] for r in every] == list(range(100))
            part = list(run.scan_history(keys=["acc"], min_step=10, max_step=20))
            assert [r["_step"] for r in part] == list(range(10, 20))
        """)


if __name__ == "__main__":
    unittest.main()
